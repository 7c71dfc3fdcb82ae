//! Puts every page of `docs/` in the crate's rustdoc.
//!
//! The pages are written to be read on GitHub, with relative links (`semantics.md#metrics`,
//! `observability/alerts.yml`). For rustdoc each page is copied into `OUT_DIR` with its links
//! rewritten: a link to a page becomes an intra-doc link to the page's module (same anchor:
//! rustdoc and GitHub derive heading ids alike), a link to any other file of the repository
//! becomes its URL on GitHub. `OUT_DIR/docs_pages.rs` declares one module of `tickguard::docs`
//! per page, so a new page needs no code. `guide.md` and `attribute.md` are not modules: they
//! are the crate's front page and the doc of `#[scheduled]`.

use std::{
    env, fs,
    path::{Component, Path, PathBuf},
};

fn main() {
    let manifest = PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let root = manifest
        .parent()
        .expect("runtime/ is in the workspace")
        .to_path_buf();
    let out = PathBuf::from(env::var("OUT_DIR").expect("set by cargo"));
    let repository = env::var("CARGO_PKG_REPOSITORY").expect("set by cargo");
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=../docs");

    let mut pages = Vec::new();
    collect_pages(&root.join("docs"), &mut pages);
    pages.sort();
    let mut modules = String::new();
    for page in &pages {
        let rel = page.strip_prefix(&root).expect("under the workspace");
        let text = fs::read_to_string(page).expect("a page is UTF-8");
        let rewritten = rewrite_links(&text, rel, &root, &repository);
        let dest = out.join(rel);
        fs::create_dir_all(dest.parent().expect("a file has a parent"))
            .expect("OUT_DIR is writable");
        fs::write(&dest, rewritten).expect("OUT_DIR is writable");
        if let Some(module) = module_name(rel) {
            modules.push_str(&format!(
                "#[doc = include_str!(concat!(env!(\"OUT_DIR\"), \"/{}\"))]\npub mod {module} {{}}\n",
                slashes(rel)
            ));
        }
    }
    fs::write(out.join("docs_pages.rs"), modules).expect("OUT_DIR is writable");
}

fn collect_pages(dir: &Path, pages: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).expect("docs/ is readable") {
        let path = entry.expect("docs/ is readable").path();
        if path.is_dir() {
            collect_pages(&path, pages);
        } else if path.extension().is_some_and(|e| e == "md") {
            pages.push(path);
        }
    }
}

/// The module of `tickguard::docs` that shows page `rel` (`docs/locks.md`: `locks`,
/// `docs/observability/README.md`: `observability`), or `None` for the two pages shown
/// elsewhere.
fn module_name(rel: &Path) -> Option<String> {
    let page = slashes(rel.strip_prefix("docs").expect("a page is in docs/"));
    let page = page
        .strip_suffix("/README.md")
        .or(page.strip_suffix(".md"))
        .expect("a .md file");
    match page {
        "guide" | "attribute" => None,
        _ => Some(page.replace(['/', '-'], "_")),
    }
}

/// Where rustdoc shows page `rel`, as an intra-doc link target.
fn intra_doc_target(rel: &Path) -> String {
    match module_name(rel) {
        Some(module) => format!("crate::docs::{module}"),
        None if rel.ends_with("guide.md") => "crate".to_owned(),
        None => "crate::scheduled".to_owned(),
    }
}

/// Rewrites the target of each inline link `[text](target)` of page `rel` that names a file
/// of the repository; leaves code blocks, URLs, anchors and intra-doc links as they are. A
/// relative link to a file that does not exist fails the build.
fn rewrite_links(text: &str, rel: &Path, root: &Path, repository: &str) -> String {
    let mut result = String::with_capacity(text.len());
    let mut in_code = false;
    for line in text.split_inclusive('\n') {
        if line.trim_start().starts_with("```") {
            in_code = !in_code;
        }
        if in_code {
            result.push_str(line);
            continue;
        }
        let mut rest = line;
        while let Some(start) = rest.find("](") {
            let (before, after) = rest.split_at(start + 2);
            result.push_str(before);
            let end = after.find(')').unwrap_or(after.len());
            result.push_str(&rewrite_target(&after[..end], rel, root, repository));
            rest = &after[end..];
        }
        result.push_str(rest);
    }
    result
}

fn rewrite_target(target: &str, rel: &Path, root: &Path, repository: &str) -> String {
    let (path, anchor) = match target.split_once('#') {
        Some((path, anchor)) => (path, format!("#{anchor}")),
        None => (target, String::new()),
    };
    let is_file_link = !path.contains(':') && (path.contains('/') || path.contains('.'));
    if !is_file_link {
        return target.to_owned(); // a URL, an anchor on this page, or an intra-doc link
    }
    let linked = normalize(&rel.parent().expect("a page is in docs/").join(path));
    let on_disk = root.join(&linked);
    assert!(
        on_disk.exists(),
        "{}: the link to {target} names no file",
        rel.display()
    );
    if linked.starts_with("docs") && path.ends_with(".md") {
        format!("{}{anchor}", intra_doc_target(&linked))
    } else {
        let kind = if on_disk.is_dir() { "tree" } else { "blob" };
        format!("{repository}/{kind}/main/{}{anchor}", slashes(&linked))
    }
}

/// `docs/observability/../semantics.md` as `docs/semantics.md`.
fn normalize(path: &Path) -> PathBuf {
    let mut result = PathBuf::new();
    for component in path.components() {
        match component {
            Component::ParentDir => {
                assert!(result.pop(), "{} leaves the repository", path.display())
            }
            Component::CurDir => {}
            other => result.push(other),
        }
    }
    result
}

fn slashes(path: &Path) -> String {
    path.components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/")
}

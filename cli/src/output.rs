//! Output for people: aligned tables (times in a job's zone come from `tickguard::human`).

/// Rows of cells printed as columns, each as wide as its widest cell, with indented notes
/// (error chains, pause notes) under a row.
#[derive(Debug, Default)]
pub(crate) struct Table {
    header: Vec<String>,
    rows: Vec<(Vec<String>, Vec<String>)>,
}

impl Table {
    /// A table with these column titles.
    pub(crate) fn new(header: &[&str]) -> Self {
        Self {
            header: header.iter().map(|h| (*h).to_owned()).collect(),
            rows: Vec::new(),
        }
    }

    /// Adds a row.
    pub(crate) fn row(&mut self, cells: Vec<String>) {
        self.rows.push((cells, Vec::new()));
    }

    /// Adds a note under the last row: each line of `text` indented, after `label`.
    pub(crate) fn note(&mut self, label: &str, text: &str) {
        if let Some((_, notes)) = self.rows.last_mut() {
            notes.extend(indented(label, text));
        }
    }

    /// The table as text, one line per row and note, each line ending in a newline.
    pub(crate) fn render(&self) -> String {
        let mut widths: Vec<usize> = self.header.iter().map(|h| h.chars().count()).collect();
        for (cells, _) in &self.rows {
            for (i, cell) in cells.iter().enumerate() {
                let width = cell.chars().count();
                match widths.get_mut(i) {
                    Some(w) => *w = (*w).max(width),
                    None => widths.push(width),
                }
            }
        }
        let line = |cells: &[String]| {
            let mut out = String::new();
            for (i, cell) in cells.iter().enumerate() {
                if i + 1 == cells.len() {
                    out.push_str(cell);
                } else {
                    let pad = widths.get(i).copied().unwrap_or(0);
                    out.push_str(&format!("{cell:<pad$}  "));
                }
            }
            out.trim_end().to_owned() + "\n"
        };
        let mut out = line(&self.header);
        for (cells, notes) in &self.rows {
            out.push_str(&line(cells));
            for note in notes {
                out.push_str(note);
                out.push('\n');
            }
        }
        out
    }
}

/// `text` under a label, each line indented by four spaces: `    error: first line`.
pub(crate) fn indented(label: &str, text: &str) -> Vec<String> {
    let pad = " ".repeat(label.len() + 2);
    text.lines()
        .enumerate()
        .map(|(i, l)| {
            if i == 0 {
                format!("    {label}: {l}")
            } else {
                format!("    {pad}{l}")
            }
        })
        .collect()
}

/// Prints `text` to standard output as it is. A reader that went away (`tickguard history
/// job | head`) ends the command quietly, as it does any Unix tool, rather than in a panic.
pub(crate) fn print(text: &str) {
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => std::process::exit(0),
        Err(e) => {
            eprintln!("error: could not write the output: {e}");
            std::process::exit(1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_align_and_indent_notes() {
        let mut table = Table::new(&["JOB", "STATUS", "ID"]);
        table.row(vec!["a".into(), "COMPLETED".into(), "a@1".into()]);
        table.row(vec!["longer".into(), "FAILED".into(), "longer@1".into()]);
        table.note("error", "boom\nsecond line");
        assert_eq!(
            table.render(),
            "JOB     STATUS     ID\n\
             a       COMPLETED  a@1\n\
             longer  FAILED     longer@1\n    error: boom\n           second line\n"
        );
    }
}

use std::rc::Rc;

fn main() {
    let _ = tickguard::Scheduler::builder().state(Rc::new(1_u32));
}

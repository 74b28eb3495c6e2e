//! A user's program whose first G crashes at once: the dump must name every
//! frame with its file:line although nothing had time to prepare symbols.

fn main() {
    runtime::go(faulting_function).join().ok();
}

#[inline(never)]
fn faulting_function() -> u8 {
    let p = std::hint::black_box(std::ptr::null::<u8>());
    // SAFETY: none: this program exists to crash.
    unsafe { std::ptr::read_volatile(p) }
}

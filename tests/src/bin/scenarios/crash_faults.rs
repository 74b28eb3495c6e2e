//! Crash scenarios, one per kind of fault, plus the traceback levels, many
//! parked Gs, and chaining to a handler installed before gort.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// The address the wild write hits: non-null, in no mapping of a Linux
/// process on any of the three architectures (below every PIE, mmap and
/// stack region, above the first pages).
pub(crate) const WILD_ADDR: usize = 0x1234_5678;

#[inline(never)]
fn wild_write_function() {
    let p = std::hint::black_box(WILD_ADDR as *mut u8);
    // SAFETY: not safe: the fault is the point.
    unsafe { std::ptr::write_volatile(p, 7) };
}

/// Symptom: a write through a wild pointer is reported without the
/// address it hit.
pub fn wild_write() {
    runtime::go(wild_write_function).join().ok();
}

#[inline(never)]
fn call_abort_function() {
    // SAFETY: abort has no preconditions; ending the process is the point.
    unsafe { libc::abort() };
}

/// Symptom: `abort()` in a G (a failed C assertion) kills the process
/// without a traceback.
pub fn abort_in_g() {
    runtime::go(call_abort_function).join().ok();
}

#[inline(never)]
fn touch_past_eof_function() -> u8 {
    let path = std::env::temp_dir().join(format!("gort-sigbus-{}", std::process::id()));
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(&path)
        .expect("create the mapped file");
    std::fs::remove_file(&path).ok();
    // SAFETY: mapping one page of an (empty) file we own; touching it past
    // EOF raises SIGBUS, which is the point.
    unsafe {
        use std::os::fd::AsRawFd;
        let p = libc::mmap(
            std::ptr::null_mut(),
            4096,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED,
            f.as_raw_fd(),
            0,
        );
        assert_ne!(p, libc::MAP_FAILED, "mmap");
        std::ptr::read_volatile(p.cast::<u8>())
    }
}

/// Symptom: a SIGBUS (a mapped file truncated under us) is not reported,
/// or reported as a segfault.
pub fn sigbus() {
    if runtime::go(touch_past_eof_function).join().is_ok() {
        println!("no SIGBUS: the page past EOF was readable");
    }
}

#[inline(never)]
fn illegal_instruction_function() {
    arch::trap::illegal_instruction()
}

/// Symptom: an illegal instruction (corrupt code, a bad jump) dies
/// silently.
pub fn sigill() {
    runtime::go(illegal_instruction_function).join().ok();
}

#[inline(never)]
fn level_parked_function() {
    // Each parked scenario function sleeps a length of its own: identical
    // bodies would be folded into one symbol in release builds.
    runtime::sleep(Duration::from_secs(3602));
    std::hint::black_box(());
}

/// Symptom: a traceback level prints too much or too little (`single`
/// shows other Gs, `all` hides them, `system` hides the runtime's frames,
/// `crash` does not relay or does not abort).
pub fn levels() {
    for _ in 0..3 {
        runtime::go(level_parked_function);
    }
    while runtime::stats().waiting_gs < 3 {
        std::thread::sleep(Duration::from_millis(1));
    }
    runtime::GoBuilder::new()
        .name("faulty")
        .spawn(crate::crash_scenarios::crash_here_with_null_read)
        .unwrap()
        .join()
        .ok();
}

#[inline(never)]
fn many_sleeper_function() {
    runtime::sleep(Duration::from_secs(3603));
    std::hint::black_box(());
}

#[inline(never)]
fn many_waiter_function(wg: &runtime::sync::WaitGroup) {
    wg.wait();
    std::hint::black_box(());
}

/// Symptom: with a thousand parked Gs the dump is a thousand copies of
/// one stack, or loses their wait reasons and spawn sites.
pub fn many_parked() {
    let wg = Arc::new(runtime::sync::WaitGroup::new());
    wg.add(1);
    for _ in 0..600 {
        runtime::go(many_sleeper_function);
    }
    for _ in 0..400 {
        let wg = wg.clone();
        runtime::go(move || many_waiter_function(&wg));
    }
    while runtime::stats().waiting_gs < 1000 {
        std::thread::sleep(Duration::from_millis(1));
    }
    runtime::go(crate::crash_scenarios::crash_here_with_null_read)
        .join()
        .ok();
}

/// Fault address the previous handler saw (0 until it ran).
static PREV_SAW: AtomicUsize = AtomicUsize::new(usize::MAX);

/// The handler installed before gort: says it ran, with the fault address
/// from its siginfo, on stderr (after gort's dump, if gort chains to it).
extern "C" fn previous_handler(_: libc::c_int, info: *mut libc::siginfo_t, _: *mut libc::c_void) {
    // SAFETY: the kernel's siginfo for a SIGSEGV, passed on by gort.
    let addr = unsafe { (*info).si_addr() } as usize;
    PREV_SAW.store(addr, Ordering::SeqCst);
    let mut buf = *b"previous SIGSEGV handler ran: si_addr=0x0000000000000000\n";
    let digits = &mut buf[40..56];
    for (i, d) in digits.iter_mut().enumerate() {
        let nib = (addr as u64 >> (60 - 4 * i)) & 0xf;
        *d = b"0123456789abcdef"[nib as usize];
    }
    // SAFETY: write(2) of our own buffer.
    unsafe { libc::write(2, buf.as_ptr().cast(), buf.len()) };
}

/// Symptom: gort's handler swallows the handler that was there before it
/// (a crash reporter, a sanitizer), or calls it before the dump, or passes
/// it a wrong siginfo.
pub fn chain_previous() {
    // SAFETY: installing a SA_SIGINFO handler before gort starts.
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = previous_handler as *const () as usize;
        sa.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK;
        libc::sigaction(libc::SIGSEGV, &sa, std::ptr::null_mut());
    }
    crate::wait_for_symbols();
    runtime::go(wild_write_function).join().ok();
}

//! Machine calibration printed in the table's header: what one first touch
//! of an anonymous page costs here. The `parked` workload is mostly page
//! faults (each parked unit touches at least one page of stack or heap), so
//! its creation time scales with this figure from machine to machine.
//!
//! ```text
//! calibrate [MiB]   # default 256
//! calib page_fault_ns=... mib=256
//! ```

use std::time::Instant;

fn main() {
    let mib: usize = std::env::args()
        .nth(1)
        .map(|s| s.parse().expect("calibrate: bad MiB"))
        .unwrap_or(256);
    let len = mib << 20;
    // SAFETY: a fresh private anonymous mapping; no existing memory is
    // touched, and the result is checked before use.
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
            -1,
            0,
        )
    };
    assert_ne!(
        p,
        libc::MAP_FAILED,
        "calibrate: mmap: {}",
        std::io::Error::last_os_error()
    );
    let base = p.cast::<u8>();
    let page = 4096;
    let t = Instant::now();
    for off in (0..len).step_by(page) {
        // SAFETY: `off < len`, inside the mapping made above.
        unsafe { base.add(off).write_volatile(1) };
    }
    let d = t.elapsed();
    println!(
        "calib page_fault_ns={:.0} mib={mib}",
        d.as_nanos() as f64 / (len / page) as f64
    );
    // SAFETY: unmaps exactly the mapping made above; nothing refers to it.
    unsafe { libc::munmap(p, len) };
}

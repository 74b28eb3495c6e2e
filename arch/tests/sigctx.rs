//! `arch::sigctx` against real signals, natively and under qemu-user.
//!
//! Signal handlers are process-wide, so every test that takes a signal runs
//! it in a `fork()`ed child: the child installs `signal_entry` with a
//! recording handler as its target, raises the signal, and the handler
//! writes a fixed-size [`Report`] to a pipe (no allocation, no formatting:
//! only `write` and `_exit`). The parent reads it with a time bound and
//! checks it. The child is a copy of one test thread of a multi-threaded
//! process, so between `fork` and `_exit` it calls only async-signal-safe
//! functions and never unwinds.
//!
//! The faulting and trapping code is assembly (naked functions), so the
//! expected `pc` and some register values are exact rather than "somewhere
//! in a compiler-generated function".
//!
//! Under qemu-user (`GORT_UNDER_QEMU=1`, set by `ci/cross.sh`) the checks
//! that depend on what qemu puts in the signal frame say so when they are
//! skipped.

use arch::sigctx::{self, SigCtx};
use std::ffi::{c_int, c_void};
use std::mem::{offset_of, size_of, zeroed};
use std::sync::atomic::{AtomicI32, Ordering};
use std::time::{Duration, Instant};
use testkit::{thread_stack, under_qemu};

// ---------------------------------------------------------------------------
// Faulting and trapping code, per architecture.
//
// `fault_read(addr)` / `fault_write(addr)` first put MARK in a scratch
// register (MARK_REG in the register dump), then access `addr`. They are
// only ever called with an address that faults, and the handler never
// returns into them. `trap()` executes a breakpoint instruction; TRAP_PC_OFF
// is where the kernel reports the pc relative to the function.
// ---------------------------------------------------------------------------

#[cfg(target_arch = "x86_64")]
mod code {
    use std::arch::naked_asm;
    pub const MARK: u64 = 0x1122_3344_5566_7788;
    pub const MARK_REG: &str = "rdx";
    /// The register holding the faulting address.
    pub const ADDR_REG: &str = "rdi";
    /// int3 reports the pc of the next instruction.
    pub const TRAP_PC_OFF: usize = 1;
    pub const PC_NAME: &str = "rip";
    pub const SP_NAME: &str = "rsp";
    pub const FP_NAME: &str = "rbp";

    #[unsafe(naked)]
    pub unsafe extern "C" fn fault_read(_addr: usize) -> usize {
        naked_asm!("movabs rdx, {m}", "mov rax, qword ptr [rdi]", "ret", m = const MARK)
    }
    #[unsafe(naked)]
    pub unsafe extern "C" fn fault_write(_addr: usize) {
        naked_asm!("movabs rdx, {m}", "mov qword ptr [rdi], rdx", "ret", m = const MARK)
    }
    #[unsafe(naked)]
    pub unsafe extern "C" fn trap() {
        naked_asm!("int3", "ret")
    }
}

#[cfg(target_arch = "aarch64")]
mod code {
    use std::arch::naked_asm;
    pub const MARK: u64 = 0x1122_3344_5566_7788;
    pub const MARK_REG: &str = "r1";
    pub const ADDR_REG: &str = "r0";
    /// brk reports its own pc.
    pub const TRAP_PC_OFF: usize = 0;
    pub const PC_NAME: &str = "pc";
    pub const SP_NAME: &str = "sp";
    pub const FP_NAME: &str = "r29";

    #[unsafe(naked)]
    pub unsafe extern "C" fn fault_read(_addr: usize) -> usize {
        naked_asm!(
            "movz x1, #0x7788",
            "movk x1, #0x5566, lsl #16",
            "movk x1, #0x3344, lsl #32",
            "movk x1, #0x1122, lsl #48",
            "ldr x0, [x0]",
            "ret"
        )
    }
    #[unsafe(naked)]
    pub unsafe extern "C" fn fault_write(_addr: usize) {
        naked_asm!(
            "movz x1, #0x7788",
            "movk x1, #0x5566, lsl #16",
            "movk x1, #0x3344, lsl #32",
            "movk x1, #0x1122, lsl #48",
            "str x1, [x0]",
            "ret"
        )
    }
    #[unsafe(naked)]
    pub unsafe extern "C" fn trap() {
        naked_asm!("brk #0xf000", "ret")
    }
}

#[cfg(target_arch = "x86")]
mod code {
    use std::arch::naked_asm;
    pub const MARK: u64 = 0x1122_3344;
    pub const MARK_REG: &str = "edx";
    pub const ADDR_REG: &str = "eax";
    pub const TRAP_PC_OFF: usize = 1;
    pub const PC_NAME: &str = "eip";
    pub const SP_NAME: &str = "esp";
    pub const FP_NAME: &str = "ebp";

    #[unsafe(naked)]
    pub unsafe extern "C" fn fault_read(_addr: usize) -> usize {
        naked_asm!("mov eax, [esp + 4]", "mov edx, {m}", "mov eax, [eax]", "ret", m = const MARK)
    }
    #[unsafe(naked)]
    pub unsafe extern "C" fn fault_write(_addr: usize) {
        naked_asm!("mov eax, [esp + 4]", "mov edx, {m}", "mov [eax], edx", "ret", m = const MARK)
    }
    #[unsafe(naked)]
    pub unsafe extern "C" fn trap() {
        naked_asm!("int3", "ret")
    }
}

/// Go's register names and order, written out independently of
/// `arch::sigctx::REG_NAMES`.
#[cfg(target_arch = "x86_64")]
const GO_NAMES: &str =
    "rax rbx rcx rdx rdi rsi rbp rsp r8 r9 r10 r11 r12 r13 r14 r15 rip rflags cs fs gs";
#[cfg(target_arch = "aarch64")]
const GO_NAMES: &str = "r0 r1 r2 r3 r4 r5 r6 r7 r8 r9 r10 r11 r12 r13 r14 r15 r16 r17 r18 r19 r20 r21 r22 r23 \
                        r24 r25 r26 r27 r28 r29 lr sp pc fault";
#[cfg(target_arch = "x86")]
const GO_NAMES: &str = "eax ebx ecx edx edi esi ebp esp eip eflags cs fs gs";

/// Byte offsets from `docs/cross-arch.md`: `si_addr` in `siginfo_t`, the PC in
/// `ucontext_t`.
#[cfg(target_arch = "x86_64")]
const TABLE: (usize, usize) = (16, 168);
#[cfg(target_arch = "aarch64")]
const TABLE: (usize, usize) = (16, 440);
#[cfg(target_arch = "x86")]
const TABLE: (usize, usize) = (12, 76);

// ---------------------------------------------------------------------------
// The report a child's handler writes.
// ---------------------------------------------------------------------------

const MAX_REGS: usize = 40;
const NAMES_BYTES: usize = 512;

/// Everything the handler saw, as plain integers (the child writes its
/// bytes to the pipe; the parent reads them back).
#[repr(C)]
#[derive(Clone, Copy)]
struct Report {
    signo: i64,
    code: i64,
    pc: u64,
    sp: u64,
    fp: u64,
    lr: u64,
    fault_addr: u64,
    /// -1 = None, 0 = Some(false), 1 = Some(true).
    is_write: i64,
    /// Address of a 16-aligned local of the handler, mod 16: not 0 if the
    /// handler was entered with a misaligned stack.
    handler_misalign: u64,
    n_regs: u64,
    names_len: u64,
    names: [u8; NAMES_BYTES],
    values: [u64; MAX_REGS],
}

impl Report {
    fn names(&self) -> &str {
        std::str::from_utf8(&self.names[..self.names_len as usize])
            .unwrap()
            .trim_end()
    }
    fn reg(&self, name: &str) -> u64 {
        let i = self
            .names()
            .split(' ')
            .position(|n| n == name)
            .unwrap_or_else(|| panic!("no register {name}"));
        self.values[i]
    }
}

/// Trailer byte a child writes when `raise` returned to it (the handler
/// and `signal_entry` returned normally).
const RETURNED: u8 = b'R';

/// The pipe's write end, in the child.
static REPORT_FD: AtomicI32 = AtomicI32::new(-1);
/// Whether the recording handler exits (for faults) or returns.
static HANDLER_EXITS: AtomicI32 = AtomicI32::new(1);

fn write_all(fd: c_int, bytes: &[u8]) {
    let mut done = 0;
    while done < bytes.len() {
        // SAFETY: the range is inside `bytes`; write is async-signal-safe.
        let n = unsafe { libc::write(fd, bytes[done..].as_ptr().cast(), bytes.len() - done) };
        if n <= 0 {
            // SAFETY: _exit is async-signal-safe.
            unsafe { libc::_exit(4) };
        }
        done += n as usize;
    }
}

/// The handler `signal_entry` forwards to in the children: records the
/// context, writes it to the pipe, then `_exit`s (a fault would recur on
/// return) or returns.
unsafe extern "C" fn record(sig: c_int, info: *mut libc::siginfo_t, uc: *mut c_void) {
    #[repr(align(16))]
    #[allow(dead_code, reason = "only its address matters")]
    struct Aligned([u8; 16]);
    let probe = Aligned([0; 16]);
    let handler_misalign = (std::hint::black_box(&probe) as *const Aligned as usize % 16) as u64;

    // SAFETY: the kernel's arguments, forwarded by signal_entry.
    let ctx = unsafe { SigCtx::from_raw(info, uc) };
    // SAFETY: an all-zero Report is valid (integers only).
    let mut r: Report = unsafe { zeroed() };
    r.signo = i64::from(ctx.signo());
    r.code = i64::from(ctx.code());
    // The parent checks signo; `sig` must agree (no panics in a child).
    if r.signo != i64::from(sig) {
        r.signo = -1;
    }
    r.pc = ctx.pc() as u64;
    r.sp = ctx.sp() as u64;
    r.fp = ctx.fp() as u64;
    r.lr = ctx.lr() as u64;
    r.fault_addr = ctx.fault_addr() as u64;
    r.is_write = match ctx.is_write() {
        None => -1,
        Some(w) => i64::from(w),
    };
    r.handler_misalign = handler_misalign;
    let (mut n, mut len) = (0usize, 0usize);
    ctx.dump_regs(&mut |name, v| {
        if n < MAX_REGS && len + name.len() < NAMES_BYTES {
            r.names[len..len + name.len()].copy_from_slice(name.as_bytes());
            r.names[len + name.len()] = b' ';
            len += name.len() + 1;
            r.values[n] = v;
            n += 1;
        }
    });
    r.n_regs = n as u64;
    r.names_len = len as u64;
    // SAFETY: Report is plain integers; viewing it as bytes is sound.
    let bytes = unsafe {
        std::slice::from_raw_parts((&r as *const Report).cast::<u8>(), size_of::<Report>())
    };
    let fd = REPORT_FD.load(Ordering::Relaxed);
    write_all(fd, bytes);
    if HANDLER_EXITS.load(Ordering::Relaxed) != 0 {
        // SAFETY: _exit is async-signal-safe.
        unsafe { libc::_exit(0) };
    }
}

/// Installs `signal_entry` for `sig` in the (child) process.
fn install(sig: c_int) {
    // SAFETY: a zeroed sigaction filled in here; signal_entry has the
    // SA_SIGINFO signature.
    unsafe {
        let mut sa: libc::sigaction = zeroed();
        sa.sa_sigaction = sigctx::signal_entry as *const () as usize;
        sa.sa_flags = libc::SA_SIGINFO;
        libc::sigemptyset(&mut sa.sa_mask);
        if libc::sigaction(sig, &sa, std::ptr::null_mut()) != 0 {
            libc::_exit(5);
        }
    }
}

/// What a child sent and how it ended.
struct Outcome {
    report: Option<Report>,
    /// The child wrote RETURNED after the signal.
    returned: bool,
    /// What the child wrote after RETURNED.
    extra: Vec<u8>,
}

/// Runs `child` in a forked process whose handler writes to a pipe; the
/// child must end with `_exit` (it is wrapped so it always does).
fn run_child(name: &str, child: impl FnOnce()) -> Outcome {
    let mut fds = [0; 2];
    // SAFETY: fds has room for two descriptors.
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0, "{name}: pipe");
    // SAFETY: the child only calls async-signal-safe functions and ends in
    // _exit (see the module docs).
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "{name}: fork");
    if pid == 0 {
        // SAFETY: closing our copy of the read end.
        unsafe { libc::close(fds[0]) };
        REPORT_FD.store(fds[1], Ordering::Relaxed);
        child();
        // SAFETY: _exit is async-signal-safe.
        unsafe { libc::_exit(0) };
    }
    // SAFETY: closing the parent's copy of the write end, so EOF comes
    // when the child exits.
    unsafe { libc::close(fds[1]) };

    let deadline = Instant::now() + Duration::from_secs(60);
    let mut buf = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            // SAFETY: killing and reaping our own child.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
                libc::waitpid(pid, std::ptr::null_mut(), 0);
            }
            panic!("{name}: child did not finish within 60 s");
        }
        let mut pfd = libc::pollfd {
            fd: fds[0],
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd.
        let r = unsafe { libc::poll(&mut pfd, 1, left.as_millis().min(1000) as c_int) };
        if r <= 0 {
            continue;
        }
        let mut chunk = [0u8; 4096];
        // SAFETY: reading into a local buffer.
        let n = unsafe { libc::read(fds[0], chunk.as_mut_ptr().cast(), chunk.len()) };
        if n <= 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n as usize]);
    }
    // SAFETY: closing our read end and reaping the child.
    let status = unsafe {
        libc::close(fds[0]);
        let mut status = 0;
        libc::waitpid(pid, &mut status, 0);
        status
    };
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "{name}: child ended with status {status:#x} (signal {})",
        if libc::WIFSIGNALED(status) {
            libc::WTERMSIG(status)
        } else {
            0
        }
    );
    let report = (buf.len() >= size_of::<Report>())
        // SAFETY: the bytes are a Report the child wrote; any bytes are a
        // valid Report (integers only).
        .then(|| unsafe { std::ptr::read_unaligned(buf.as_ptr().cast::<Report>()) });
    let tail = &buf[report.map_or(0, |_| size_of::<Report>())..];
    Outcome {
        report,
        returned: tail.first() == Some(&RETURNED),
        extra: tail.get(1..).unwrap_or(&[]).to_vec(),
    }
}

/// A page that faults on any access, unmapped when dropped.
struct BadPage(usize);

impl BadPage {
    fn new() -> BadPage {
        // SAFETY: a fresh anonymous PROT_NONE mapping.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                4096,
                libc::PROT_NONE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        assert_ne!(p, libc::MAP_FAILED);
        BadPage(p as usize)
    }
}

impl Drop for BadPage {
    fn drop(&mut self) {
        // SAFETY: unmapping the page mapped in new().
        unsafe { libc::munmap(self.0 as *mut c_void, 4096) };
    }
}

/// Checks what every report must satisfy: the name order, and that the
/// accessors agree with the dump.
fn check_common(name: &str, r: &Report) {
    assert_eq!(r.names(), GO_NAMES, "{name}: dump_regs names");
    assert_eq!(r.n_regs as usize, GO_NAMES.split(' ').count());
    assert_eq!(r.reg(code::PC_NAME), r.pc, "{name}: dump pc vs pc()");
    assert_eq!(r.reg(code::SP_NAME), r.sp, "{name}: dump sp vs sp()");
    assert_eq!(r.reg(code::FP_NAME), r.fp, "{name}: dump fp vs fp()");
    if cfg!(target_arch = "aarch64") {
        assert_eq!(r.reg("lr"), r.lr, "{name}: dump lr vs lr()");
    } else {
        assert_eq!(r.lr, 0, "{name}: lr() is 0 without a link register");
    }
    assert_eq!(
        r.handler_misalign, 0,
        "{name}: handler entered with a misaligned stack"
    );
}

/// Runs `f(addr)` on a PROT_NONE page in a child and returns its report.
fn fault(name: &str, f: unsafe extern "C" fn(usize), addr: usize) -> Report {
    let out = run_child(name, || {
        sigctx::set_signal_target(Some(record));
        install(libc::SIGSEGV);
        // SAFETY: faults; the handler writes the report and exits.
        unsafe { f(addr) };
    });
    out.report.unwrap_or_else(|| panic!("{name}: no report"))
}

/// Shared body of the read and write fault tests.
fn check_fault(
    name: &str,
    f: usize,
    addr: usize,
    stack: (usize, usize),
    r: &Report,
    want_write: bool,
) {
    check_common(name, r);
    assert_eq!(r.signo, i64::from(libc::SIGSEGV), "{name}: signo");
    // SEGV_ACCERR (2; not in the libc crate): a mapped page without access.
    assert_eq!(r.code, 2, "{name}: si_code of a PROT_NONE page");
    assert_eq!(r.fault_addr as usize, addr, "{name}: fault_addr");
    assert!(
        (f..f + 32).contains(&(r.pc as usize)),
        "{name}: pc {:#x} outside the faulting function at {f:#x}",
        r.pc
    );
    assert_ne!(r.pc as usize, record as *const () as usize);
    assert!(
        (stack.0..stack.1).contains(&(r.sp as usize)),
        "{name}: sp {:#x} outside the stack {stack:x?}",
        r.sp
    );
    assert_eq!(
        r.reg(code::MARK_REG),
        code::MARK,
        "{name}: marker register in the dump"
    );
    assert_eq!(
        r.reg(code::ADDR_REG) as usize,
        addr,
        "{name}: address register in the dump"
    );
    if cfg!(target_arch = "aarch64") {
        // lr is the return address into the caller (the child closure).
        assert!(r.lr != 0 && r.lr != r.pc, "{name}: lr {:#x}", r.lr);
    }
    let want = i64::from(want_write);
    match r.is_write {
        w if w == want => {}
        // qemu-i386 fills `err` (not `trapno`), so only aarch64 skips.
        -1 if under_qemu() && cfg!(target_arch = "aarch64") => eprintln!(
            "{name}: is_write() check skipped: qemu-aarch64 writes no esr_context record in the signal frame"
        ),
        w => panic!("{name}: is_write() = {w} (-1 = None), want {want}"),
    }
}

// ---------------------------------------------------------------------------
// Tests.
// ---------------------------------------------------------------------------

/// A zeroed `siginfo_t` and `ucontext_t` with signo and code set, for
/// checking the accessors' decoding without taking a signal.
fn synthetic(signo: c_int, code: c_int) -> Box<(libc::siginfo_t, libc::ucontext_t)> {
    // SAFETY: all-zero siginfo_t and ucontext_t are valid values.
    let mut b: Box<(libc::siginfo_t, libc::ucontext_t)> = Box::new(unsafe { zeroed() });
    b.0.si_signo = signo;
    b.0.si_code = code;
    b
}

fn ctx_of(b: &mut (libc::siginfo_t, libc::ucontext_t)) -> SigCtx {
    // SAFETY: both point at valid, complete structures that outlive the
    // SigCtx (it is used before `b` is touched again).
    unsafe { SigCtx::from_raw(&mut b.0, (&mut b.1 as *mut libc::ucontext_t).cast()) }
}

/// Symptom guarded against: a crash report calling a read a write (or
/// claiming to know) for faults whose error code has no write bit: kill()ed
/// signals carry stale `trapno`/`err`, general-protection faults have
/// another error code. Also qemu-i386's `trapno` of -1 must not hide `err`.
#[cfg(any(target_arch = "x86_64", target_arch = "x86"))]
#[test]
fn is_write_decoding_x86() {
    const ACCERR: c_int = 2;
    let (trapno, err) = (libc::REG_TRAPNO as usize, libc::REG_ERR as usize);
    let cases: &[(c_int, c_int, i64, i64, Option<bool>)] = &[
        // signo, si_code, trapno, err, expected
        (libc::SIGSEGV, ACCERR, 14, 0x7, Some(true)),
        (libc::SIGSEGV, ACCERR, 14, 0x5, Some(false)),
        (libc::SIGSEGV, 1, 14, 0x6, Some(true)),
        (libc::SIGBUS, libc::BUS_ADRERR, 14, 0x6, Some(true)),
        // qemu-user: trapno -1, err filled in.
        (libc::SIGSEGV, ACCERR, -1, 0x7, Some(true)),
        (libc::SIGSEGV, ACCERR, -1, 0x5, Some(false)),
        // General-protection fault: SI_KERNEL, vector 13.
        (libc::SIGSEGV, libc::SI_KERNEL, 13, 0x2, None),
        // A page-fault code with another vector: not trusted.
        (libc::SIGSEGV, ACCERR, 13, 0x2, None),
        // Sent by a process: stale trap fields.
        (libc::SIGSEGV, libc::SI_USER, 14, 0x6, None),
        (libc::SIGSEGV, libc::SI_TKILL, 14, 0x6, None),
        // Alignment check.
        (libc::SIGBUS, 1, 17, 0x2, None),
        (libc::SIGUSR1, ACCERR, 14, 0x6, None),
    ];
    for &(signo, code, t, e, want) in cases {
        let mut b = synthetic(signo, code);
        b.1.uc_mcontext.gregs[trapno] = t as _;
        b.1.uc_mcontext.gregs[err] = e as _;
        assert_eq!(
            ctx_of(&mut b).is_write(),
            want,
            "signo {signo} code {code} trapno {t} err {e:#x}"
        );
    }
}

/// Symptom guarded against: the `esr_context` walk reading past
/// `__reserved` on a malformed record chain, or misreading WnR. Runs the
/// parser on hand-built record chains (qemu-aarch64 writes no ESR record,
/// so this is what exercises it there).
#[cfg(target_arch = "aarch64")]
#[test]
fn is_write_decoding_aarch64_esr() {
    /// `__reserved` in ucontext_t: uc_mcontext at 176, then 288.
    const RESERVED: usize = 176 + 288;
    const ESR_MAGIC: u32 = 0x4553_5201;
    const FPSIMD_MAGIC: u32 = 0x4650_8001;
    const DABT_LOW: u64 = 0x24 << 26;
    const WNR: u64 = 1 << 6;
    const CM: u64 = 1 << 8;
    // A chain: (magic, size, payload word) records, then the raw tail.
    fn build(records: &[(u32, u32, u64)]) -> Box<(libc::siginfo_t, libc::ucontext_t)> {
        let mut b = synthetic(libc::SIGSEGV, 2);
        let base = (&mut b.1 as *mut libc::ucontext_t).cast::<u8>();
        let mut off = RESERVED;
        for &(magic, size, word) in records {
            // SAFETY: the test chains stay inside the 4096-byte area
            // (asserted), which lies inside ucontext_t.
            unsafe {
                assert!(off + 16 <= RESERVED + 4096);
                base.add(off).cast::<u32>().write_unaligned(magic);
                base.add(off + 4).cast::<u32>().write_unaligned(size);
                base.add(off + 8).cast::<u64>().write_unaligned(word);
            }
            // A malformed size still leaves the next record after this one.
            off += (size as usize).max(16);
        }
        b
    }
    let fpsimd = (FPSIMD_MAGIC, 528, 0);
    let cases: &[(&[(u32, u32, u64)], Option<bool>)] = &[
        (&[fpsimd, (ESR_MAGIC, 16, DABT_LOW | WNR)], Some(true)),
        (&[fpsimd, (ESR_MAGIC, 16, DABT_LOW)], Some(false)),
        (&[(ESR_MAGIC, 16, (0x25 << 26) | WNR)], Some(true)),
        // Cache maintenance reports WnR = 1 but is not a write.
        (&[fpsimd, (ESR_MAGIC, 16, DABT_LOW | WNR | CM)], Some(false)),
        // Instruction abort: not a data access.
        (&[fpsimd, (ESR_MAGIC, 16, (0x20 << 26) | WNR)], None),
        // No ESR record.
        (&[fpsimd], None),
        // Malformed: a zero size, an ESR record too small, a size running
        // past the area.
        (
            &[(FPSIMD_MAGIC, 0, 0), (ESR_MAGIC, 16, DABT_LOW | WNR)],
            None,
        ),
        (&[fpsimd, (ESR_MAGIC, 8, DABT_LOW | WNR)], None),
        (&[(FPSIMD_MAGIC, 4096 + 16, 0)], None),
    ];
    for (i, &(records, want)) in cases.iter().enumerate() {
        let mut b = build(records);
        assert_eq!(ctx_of(&mut b).is_write(), want, "case {i}");
    }
    // A record chain that fills the area exactly, with no terminator: the
    // walk must stop at the end.
    let mut b = build(&[(FPSIMD_MAGIC, 2048, 0), (FPSIMD_MAGIC, 2048, 0)]);
    assert_eq!(ctx_of(&mut b).is_write(), None);
    // Not a kernel-raised fault: the record is ignored.
    let mut b = build(&[fpsimd, (ESR_MAGIC, 16, DABT_LOW | WNR)]);
    b.0.si_code = libc::SI_TKILL;
    assert_eq!(ctx_of(&mut b).is_write(), None);
}

/// Symptom guarded against: libc's layout and the kernel's disagree, and
/// the crash report prints a wrong pc or fault address. Checks the offsets
/// table of `docs/cross-arch.md` through the accessors, on a hand-made context.
#[test]
fn offsets_match_the_abi_table() {
    let (si_addr_off, pc_off) = TABLE;
    // SAFETY: all-zero siginfo_t and ucontext_t are valid values.
    let (mut info, mut uc): (libc::siginfo_t, libc::ucontext_t) = unsafe { (zeroed(), zeroed()) };
    let base = &mut info as *mut libc::siginfo_t as *mut u8;
    // SAFETY: the offsets are inside siginfo_t (128 bytes); si_signo at 0,
    // si_code at 8 on every Linux target.
    unsafe {
        base.cast::<c_int>().write(libc::SIGBUS);
        base.add(8).cast::<c_int>().write(libc::BUS_ADRERR);
        base.add(si_addr_off)
            .cast::<usize>()
            .write_unaligned(0x5a5a_1000);
        (&mut uc as *mut libc::ucontext_t as *mut u8)
            .add(pc_off)
            .cast::<usize>()
            .write_unaligned(0x4242_4240);
    }
    // SAFETY: both point at valid, complete structures that outlive ctx.
    let ctx = unsafe { SigCtx::from_raw(&mut info, (&mut uc as *mut libc::ucontext_t).cast()) };
    assert_eq!(ctx.signo(), libc::SIGBUS);
    assert_eq!(ctx.code(), libc::BUS_ADRERR);
    assert_eq!(ctx.fault_addr(), 0x5a5a_1000);
    assert_eq!(ctx.pc(), 0x4242_4240);
    // A zeroed context has no trap information: not a page fault.
    assert_eq!(ctx.is_write(), None);
    assert_eq!(offset_of!(libc::siginfo_t, si_signo), 0);
    assert_eq!(offset_of!(libc::siginfo_t, si_code), 8);
}

/// Symptom guarded against: a traceback header whose registers are printed
/// in an order or with names that differ from Go's, which tools parsing
/// Go crash output rely on.
#[test]
fn dump_regs_names_in_go_order() {
    // SAFETY: all-zero siginfo_t and ucontext_t are valid values.
    let (mut info, mut uc): (libc::siginfo_t, libc::ucontext_t) = unsafe { (zeroed(), zeroed()) };
    // SAFETY: both point at valid, complete structures that outlive ctx.
    let ctx = unsafe { SigCtx::from_raw(&mut info, (&mut uc as *mut libc::ucontext_t).cast()) };
    let mut names = Vec::new();
    ctx.dump_regs(&mut |name, v| {
        assert_eq!(v, 0);
        names.push(name);
    });
    assert_eq!(names.join(" "), GO_NAMES);
    assert_eq!(sigctx::REG_NAMES.join(" "), GO_NAMES);
}

/// Symptom guarded against: a crash report whose fault address or pc is
/// wrong, or which calls a read a write. A load from a PROT_NONE page.
#[test]
fn sigsegv_read() {
    let page = BadPage::new();
    let addr = page.0 + 0x18;
    let stack = thread_stack();
    let f: unsafe extern "C" fn(usize) -> usize = code::fault_read;
    // SAFETY: same ABI; the return value is never produced (it faults).
    let f: unsafe extern "C" fn(usize) = unsafe { std::mem::transmute(f) };
    let r = fault("sigsegv_read", f, addr);
    check_fault(
        "sigsegv_read",
        code::fault_read as *const () as usize,
        addr,
        stack,
        &r,
        false,
    );
}

/// As [`sigsegv_read`], for a store: `is_write()` must say so.
#[test]
fn sigsegv_write() {
    let page = BadPage::new();
    let addr = page.0 + 0x40;
    let stack = thread_stack();
    let r = fault("sigsegv_write", code::fault_write, addr);
    check_fault(
        "sigsegv_write",
        code::fault_write as *const () as usize,
        addr,
        stack,
        &r,
        true,
    );
}

/// Symptom guarded against: a breakpoint trap (SIGTRAP) reported with the
/// wrong pc or sp.
#[test]
fn sigtrap_breakpoint() {
    let stack = thread_stack();
    let out = run_child("sigtrap", || {
        sigctx::set_signal_target(Some(record));
        install(libc::SIGTRAP);
        // SAFETY: traps; the handler writes the report and exits.
        unsafe { code::trap() };
    });
    let r = out.report.expect("sigtrap: no report");
    check_common("sigtrap", &r);
    assert_eq!(r.signo, i64::from(libc::SIGTRAP));
    let want_pc = code::trap as *const () as usize + code::TRAP_PC_OFF;
    assert_eq!(r.pc as usize, want_pc, "sigtrap: pc");
    assert!(
        (stack.0..stack.1).contains(&(r.sp as usize)),
        "sigtrap: sp {:#x} outside {stack:x?}",
        r.sp
    );
    assert_eq!(r.is_write, -1, "sigtrap: is_write() is None for a trap");
}

/// Symptom guarded against: an asynchronous signal (SIGQUIT-style dump
/// request) whose sp is not on the interrupted thread's stack, or a
/// `signal_entry` that cannot return (the x86 trampoline's epilogue).
#[test]
fn sigusr1_raise_returns() {
    let stack = thread_stack();
    let out = run_child("sigusr1", || {
        let local = 0u64;
        let local_addr = std::hint::black_box(&local) as *const u64 as usize;
        HANDLER_EXITS.store(0, Ordering::Relaxed);
        sigctx::set_signal_target(Some(record));
        install(libc::SIGUSR1);
        // SAFETY: raise is async-signal-safe; the handler returns.
        unsafe { libc::raise(libc::SIGUSR1) };
        let fd = REPORT_FD.load(Ordering::Relaxed);
        write_all(fd, &[RETURNED]);
        write_all(fd, &local_addr.to_ne_bytes());
    });
    let r = out.report.expect("sigusr1: no report");
    assert!(
        out.returned,
        "sigusr1: the handler did not return through signal_entry"
    );
    check_common("sigusr1", &r);
    assert_eq!(r.signo, i64::from(libc::SIGUSR1));
    assert_eq!(
        r.code,
        i64::from(libc::SI_TKILL),
        "sigusr1: raise sends with tgkill"
    );
    assert_eq!(
        r.is_write, -1,
        "sigusr1: is_write() is None for a sent signal"
    );
    assert!(
        (stack.0..stack.1).contains(&(r.sp as usize)),
        "sigusr1: sp {:#x} outside {stack:x?}",
        r.sp
    );
    // The child's local is in a frame above raise's, and not far.
    let local = usize::from_ne_bytes(
        out.extra
            .as_slice()
            .try_into()
            .expect("sigusr1: local address"),
    );
    assert!(
        (r.sp as usize) < local && local - (r.sp as usize) < 64 * 1024,
        "sigusr1: sp {:#x} not just below the caller's local at {local:#x}",
        r.sp
    );
    assert!(
        r.pc != 0 && r.pc as usize != record as *const () as usize,
        "sigusr1: pc {:#x}",
        r.pc
    );
}

/// Symptom guarded against: a signal arriving before the signals crate has
/// stored its handler (or after it cleared it) crashing in `signal_entry`.
#[test]
fn no_target_returns() {
    let out = run_child("no_target", || {
        sigctx::set_signal_target(None);
        install(libc::SIGUSR2);
        // SAFETY: raise is async-signal-safe; signal_entry returns at once.
        unsafe { libc::raise(libc::SIGUSR2) };
        write_all(REPORT_FD.load(Ordering::Relaxed), &[RETURNED]);
    });
    assert!(out.report.is_none(), "no_target: nothing was recorded");
    assert!(out.returned, "no_target: signal_entry did not return");
}

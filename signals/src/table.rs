//! Which signals gort handles and what each means: the policy as data
//! (Go keeps the same in `sigtab`).

/// What a signal does when it reaches gort's handler.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// A synchronous fault (the faulting instruction): dump and die.
    Fault,
    /// `abort()` or an external SIGABRT: dump and die.
    Abort,
    /// SIGQUIT: from outside, dump every G and exit 2; from gort's crash
    /// relay, dump this M's G.
    Quit,
}

/// One row of the table.
#[derive(Clone, Copy, Debug)]
pub struct Entry {
    /// Signal number.
    pub signo: i32,
    /// Name printed in the dump.
    pub name: &'static str,
    /// What it does.
    pub action: Action,
}

/// The signals gort installs handlers for.
pub const TABLE: &[Entry] = &[
    Entry {
        signo: libc::SIGSEGV,
        name: "SIGSEGV: segmentation violation",
        action: Action::Fault,
    },
    Entry {
        signo: libc::SIGBUS,
        name: "SIGBUS: bus error",
        action: Action::Fault,
    },
    Entry {
        signo: libc::SIGFPE,
        name: "SIGFPE: floating-point exception",
        action: Action::Fault,
    },
    Entry {
        signo: libc::SIGILL,
        name: "SIGILL: illegal instruction",
        action: Action::Fault,
    },
    Entry {
        signo: libc::SIGTRAP,
        name: "SIGTRAP: trace trap",
        action: Action::Fault,
    },
    Entry {
        signo: libc::SIGABRT,
        name: "SIGABRT: abort",
        action: Action::Abort,
    },
    Entry {
        signo: libc::SIGQUIT,
        name: "SIGQUIT: quit",
        action: Action::Quit,
    },
];

/// The row for `signo`.
pub fn entry(signo: i32) -> Option<&'static Entry> {
    TABLE.iter().find(|e| e.signo == signo)
}

/// A short text for `si_code` of `signo` (Go prints the number; gort adds
/// the meaning).
pub fn code_name(signo: i32, code: i32) -> &'static str {
    match (signo, code) {
        (_, libc::SI_USER) => "SI_USER",
        (_, libc::SI_TKILL) => "SI_TKILL",
        (_, libc::SI_QUEUE) => "SI_QUEUE",
        (libc::SIGSEGV, 1) => "SEGV_MAPERR",
        (libc::SIGSEGV, 2) => "SEGV_ACCERR",
        (libc::SIGBUS, 1) => "BUS_ADRALN",
        (libc::SIGBUS, 2) => "BUS_ADRERR",
        (libc::SIGFPE, 1) => "FPE_INTDIV",
        (libc::SIGFPE, 2) => "FPE_INTOVF",
        (libc::SIGILL, 1) => "ILL_ILLOPC",
        (libc::SIGILL, 2) => "ILL_ILLOPN",
        (libc::SIGTRAP, 1) => "TRAP_BRKPT",
        _ => "",
    }
}

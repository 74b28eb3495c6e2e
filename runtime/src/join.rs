//! Spawning with options, and joining.

use scheduler::join::JoinSlot;
use scheduler::{Entry, SpawnError, SpawnOptions};
use std::any::Any;
use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Once};

/// What a G produced: its value, or its panic payload.
type Outcome<T> = std::thread::Result<T>;

/// Shared by a G and its `JoinHandle`: the function to run, then its outcome
/// (`scheduler::join::JoinSlot`: one state word, no lock). One allocation
/// per G.
struct Packet<F, T> {
    slot: JoinSlot<F, Outcome<T>>,
}

impl<F, T> Entry for Packet<F, T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    fn run(&self) {
        let Some((f, done)) = self.slot.take_fn() else {
            return;
        };
        let outcome = catch_unwind(AssertUnwindSafe(f));
        // A join sees the effects of the G's `g_local!` destructors.
        scheduler::glocal::drop_g_locals();
        done.complete(outcome);
    }
}

/// Owned permission to join a G: [`JoinHandle::join`] waits for it and
/// returns its value, or `Err` with the panic payload if it panicked.
/// Dropping the handle detaches the G (it keeps running).
pub struct JoinHandle<T> {
    packet: Arc<dyn Join<T>>,
    id: u64,
}

/// The joiner's view of a packet, without the function type.
trait Join<T>: Send + Sync {
    fn join(&self) -> Option<Outcome<T>>;
    fn is_done(&self) -> bool;
}

impl<F: Send, T: Send> Join<T> for Packet<F, T> {
    fn join(&self) -> Option<Outcome<T>> {
        self.slot.join()
    }

    fn is_done(&self) -> bool {
        self.slot.is_done()
    }
}

impl<T> fmt::Debug for JoinHandle<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JoinHandle").field("id", &self.id).finish()
    }
}

impl<T> JoinHandle<T> {
    /// Id of the G (as [`crate::current`] reports inside it).
    pub fn id(&self) -> u64 {
        self.id
    }

    /// Whether the G has finished.
    pub fn is_finished(&self) -> bool {
        self.packet.is_done()
    }

    /// Waits for the G to finish and returns its value, or `Err(payload)` if
    /// it panicked. Parks the calling G when called from a G; blocks the
    /// thread when called from a plain thread.
    pub fn join(self) -> Outcome<T> {
        match self.packet.join() {
            Some(outcome) => outcome,
            // `join` takes the handle, and the handle is the only joiner.
            None => unreachable!("JoinHandle::join: G {} joined twice", self.id),
        }
    }
}

/// Spawns a G with options: a name (shown in panic messages and crash dumps)
/// and a stack size.
///
/// ```
/// let h = runtime::GoBuilder::new().name("worker").stack_size(64 * 1024).spawn(|| {
///     runtime::current().unwrap().name.as_deref().map(str::to_owned)
/// }).unwrap();
/// assert_eq!(h.join().unwrap().as_deref(), Some("worker"));
/// ```
#[derive(Clone, Debug, Default)]
pub struct GoBuilder {
    name: Option<Arc<str>>,
    stack_size: Option<usize>,
}

impl GoBuilder {
    /// Default options: no name, the runtime's stack size.
    pub fn new() -> GoBuilder {
        GoBuilder::default()
    }

    /// Names the G.
    pub fn name(mut self, name: impl Into<String>) -> GoBuilder {
        self.name = Some(Arc::from(name.into()));
        self
    }

    /// Usable stack bytes for this G (rounded up to the page size). Sizes
    /// outside 16 KiB..=1 GiB (64 MiB on 32-bit) make `spawn` fail.
    pub fn stack_size(mut self, bytes: usize) -> GoBuilder {
        self.stack_size = Some(bytes);
        self
    }

    /// Starts the G, or returns why it could not be created.
    #[track_caller]
    pub fn spawn<F, T>(self, f: F) -> Result<JoinHandle<T>, SpawnError>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        crate::ensure_started();
        let packet = Arc::new(Packet {
            slot: JoinSlot::new(f),
        });
        let opts = SpawnOptions {
            name: self.name,
            stack_size: self.stack_size,
            site: std::panic::Location::caller(),
        };
        let id = scheduler::spawn(packet.clone(), opts)?;
        Ok(JoinHandle { packet, id })
    }
}

/// Set by `Builder::panic_aborts`: an unhandled panic in a G ends the
/// process with the crash dump.
pub(crate) static PANIC_ABORTS: std::sync::atomic::AtomicBool =
    std::sync::atomic::AtomicBool::new(false);

/// Names the G in panic messages, as std names threads: `goroutine 7
/// 'worker' panicked at src/main.rs:3:5:`. Panics on plain threads go to the
/// hook that was installed before. Installed when the runtime starts
/// (`ensure_started`), whichever call starts it, so a panic in the first
/// callback from C is named too.
///
/// The hook runs on the panicking G's stack, which may be as small as
/// `MIN_STACK_SIZE` (16 KiB). Walking the stack for a backtrace is cheap
/// there; resolving and printing it (DWARF line tables, demangling) takes
/// tens of KiB, so it runs on a short-lived helper thread with a stack of
/// its own while the G waits.
///
/// The message goes straight to the process's stderr (fd 2), as Go's
/// runtime writes its panics, never through `eprint!`: the runtime's
/// threads inherit the test harness's output capture of whichever test
/// started them, so under `cargo test` an `eprint!` from a G would land in
/// that test's buffer (usually already closed) and vanish.
pub(crate) fn install_panic_hook() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let Some(g) = scheduler::current_g() else { return previous(info) };
            let msg = payload_str(info.payload());
            let location = info.location().map_or_else(|| "<unknown>".to_owned(), |l| l.to_string());
            let name = g.name().map_or_else(String::new, |n| format!(" '{n}'"));
            let head = format!("\ngoroutine {}{name} panicked at {location}:\n{msg}\n", g.goid());
            let backtrace = std::backtrace::Backtrace::capture();
            match backtrace.status() {
                std::backtrace::BacktraceStatus::Captured => print_with_backtrace(head, backtrace),
                _ => write_stderr(&format!("{head}note: run with `RUST_BACKTRACE=1` environment variable to display a backtrace\n")),
            }
            if PANIC_ABORTS.load(std::sync::atomic::Ordering::Relaxed) || signals::level::level() == signals::Level::Crash {
                scheduler::fatal::throw("unhandled panic in a G");
            }
        }));
    });
}

/// Stack of the thread that resolves a panicking G's backtrace.
const RESOLVE_STACK_SIZE: usize = 1 << 20;

/// Prints `head` and the resolved `backtrace` from a helper thread (see
/// [`install_panic_hook`]). If no thread can be started (a thread limit),
/// prints `head` and says why the backtrace is missing.
#[inline(never)]
fn print_with_backtrace(head: String, backtrace: std::backtrace::Backtrace) {
    let head = Arc::new(head);
    let h2 = head.clone();
    let printed = std::thread::Builder::new()
        .name("gort-panic".into())
        .stack_size(RESOLVE_STACK_SIZE)
        .spawn(move || write_stderr(&format!("{h2}stack backtrace:\n{backtrace}")))
        .map(|t| t.join().is_ok());
    if !matches!(printed, Ok(true)) {
        write_stderr(&format!(
            "{head}stack backtrace: not shown (no thread could be started to resolve it)\n"
        ));
    }
}

/// Writes `text` to the process's stderr in one piece, bypassing any
/// output capture (see [`install_panic_hook`]). Errors are ignored, as
/// `eprint!` in a panic hook would have nowhere to report them.
fn write_stderr(text: &str) {
    use std::io::Write;
    let _ = std::io::stderr().lock().write_all(text.as_bytes());
}

fn payload_str(p: &(dyn Any + Send)) -> &str {
    if let Some(s) = p.downcast_ref::<&str>() {
        s
    } else if let Some(s) = p.downcast_ref::<String>() {
        s
    } else {
        "Box<dyn Any>"
    }
}

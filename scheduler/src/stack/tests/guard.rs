//! Guards: the probe, guards that really fault, the map limit with
//! mprotect guards, and none of it with madvise guards.

use super::*;

#[test]
fn probe_matches_the_platform() {
    let kind = guard_kind();
    assert_eq!(guard_kind(), kind, "the probe result is cached");
    if under_qemu() {
        assert_eq!(
            kind,
            GuardKind::Mprotect,
            "qemu-user installs no madvise guards"
        );
    } else {
        // This machine runs Linux 6.18 natively; a kernel older than 6.13
        // would (rightly) say Mprotect.
        let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
        let mut v = release
            .trim()
            .split(['.', '-'])
            .map(|x| x.parse::<u32>().unwrap_or(0));
        let (major, minor) = (v.next().unwrap_or(0), v.next().unwrap_or(0));
        if (major, minor) >= (6, 13) {
            assert_eq!(
                kind,
                GuardKind::Madvise,
                "kernel {release} has MADV_GUARD_INSTALL"
            );
        } else {
            assert_eq!(
                kind,
                GuardKind::Mprotect,
                "kernel {release} lacks MADV_GUARD_INSTALL"
            );
        }
    }
    let forced = StackPool::new(StackConfig {
        force_mprotect: true,
        ..StackConfig::default()
    });
    assert_eq!(forced.guard_kind(), GuardKind::Mprotect);
    assert_eq!(StackPool::new(StackConfig::default()).guard_kind(), kind);
}

/// Symptom: a stack overflow silently writes into the neighbouring
/// stack instead of faulting.
#[test]
fn the_guard_really_faults() {
    for force_mprotect in [false, true] {
        let pool = StackPool::new(StackConfig {
            force_mprotect,
            ..StackConfig::default()
        });
        // Two neighbours: the upper one's guard sits right above the
        // lower one's top.
        let low = pool.alloc(DEFAULT_STACK_SIZE).unwrap();
        let high = pool.alloc(DEFAULT_STACK_SIZE).unwrap();
        assert_eq!(high.guard().start, low.top());
        let (lo_top, guard) = (low.top(), high.guard());
        let (status, out) = in_child(move || {
            // SAFETY: the top of the lower stack is usable; then the
            // write one byte above it, into the guard, must fault.
            unsafe {
                ((lo_top - 1) as *mut u8).write_volatile(1);
                (guard.start as *mut u8).write_volatile(1);
            }
            "wrote into the guard".to_owned()
        });
        assert!(
            libc::WIFSIGNALED(status) && libc::WTERMSIG(status) == libc::SIGSEGV,
            "{:?} guard did not fault: status {status:#x}, child said {out:?}",
            pool.guard_kind()
        );
        // The parent is unaffected and the stacks still work.
        touch(&low, 1);
        touch(&high, 1);
        pool.free(low);
        pool.free(high);
    }
}

/// Symptom: with mprotect guards, stack number ~32,750 panics (or the
/// process can no longer create threads) instead of a clear error.
#[test]
fn mprotect_guards_stop_at_the_map_limit_with_a_clear_error() {
    if under_qemu() {
        eprintln!(
            "skipped under qemu-user: tens of thousands of mprotect calls take minutes there"
        );
        return;
    }
    let (status, out) = in_child(|| {
        let pool = StackPool::new(StackConfig {
            default_size: MIN_STACK_SIZE,
            force_mprotect: true,
            ..StackConfig::default()
        });
        let maps_before = count_maps().unwrap_or(0);
        let mut v = Vec::new();
        let err = loop {
            match pool.alloc(MIN_STACK_SIZE) {
                Ok(s) => v.push(s),
                Err(e) => break e,
            }
            if v.len() > 200_000 {
                return "no error after 200000 stacks".to_owned();
            }
        };
        let maps_grown = count_maps().unwrap_or(0).saturating_sub(maps_before);
        // The headroom left: this process can still start a thread.
        let thread = std::thread::spawn(|| 5).join().map_or("failed", |_| "ok");
        // Freed stacks are reused without a new mapping.
        pool.free(v.pop().unwrap());
        let reuse = if pool.alloc(MIN_STACK_SIZE).is_ok() {
            "ok"
        } else {
            "failed"
        };
        format!(
            "count={}\nmaps_grown={maps_grown}\nthread={thread}\nreuse={reuse}\ndebug={err:?}\nerror={err}",
            v.len() + 1
        )
    });
    assert!(libc::WIFEXITED(status), "child died: {status:#x}: {out}");
    let val = |k: &str| {
        out.lines()
            .find_map(|l| l.strip_prefix(k).and_then(|l| l.strip_prefix('=')))
            .unwrap_or_else(|| panic!("no {k} in {out:?}"))
            .to_owned()
    };
    let count: usize = val("count").parse().unwrap();
    assert!(val("debug").starts_with("MapLimit"), "{out}");
    assert!(val("error").contains("vm.max_map_count"), "{out}");
    eprintln!("{out}");
    let max = read_max_map_count().unwrap_or(65530);
    assert!(
        count as u64 > max * 30_000 / 65_530,
        "only {count} stacks: {out}"
    );
    // The guards really are mappings (the pool's budget is not what
    // stopped a guard-less loop): two per stack, the guard and the
    // usable range split off the chunk.
    let grown: usize = val("maps_grown").parse().unwrap();
    assert!(
        grown >= 2 * count - 10,
        "{count} stacks added only {grown} mappings"
    );
    assert_eq!(val("thread"), "ok", "no headroom left: {out}");
    assert_eq!(val("reuse"), "ok", "{out}");
}

/// Symptom: madvise guards still add a mapping per stack, so the map
/// limit comes back.
#[test]
fn madvise_guards_fit_a_hundred_thousand_stacks() {
    if guard_kind() != GuardKind::Madvise {
        eprintln!(
            "skipped: no MADV_GUARD_INSTALL here ({})",
            if under_qemu() {
                "qemu-user ignores it"
            } else {
                "kernel older than 6.13"
            }
        );
        return;
    }
    let pool = StackPool::new(StackConfig {
        default_size: MIN_STACK_SIZE,
        ..StackConfig::default()
    });
    let maps_before = count_maps().unwrap();
    let v: Vec<_> = (0..100_000)
        .map(|_| pool.alloc(MIN_STACK_SIZE).unwrap())
        .collect();
    let maps_after = count_maps().unwrap();
    assert_eq!(pool.live(), 100_000);
    assert!(
        maps_after < maps_before + 1000,
        "mappings grew from {maps_before} to {maps_after}"
    );
    assert!(pool.guard_of(v[99_999].guard().start));
    for s in v {
        pool.free(s);
    }
    assert_eq!(pool.live(), 0);
}

//! The pool: allocation, reuse, sizes, the live limit, the scavenger and
//! the address-space limit.

use super::*;

#[test]
fn alloc_free_reuse_and_rounding() {
    let pg = page_size();
    let pool = StackPool::new(StackConfig {
        default_size: 64 << 10,
        ..StackConfig::default()
    });
    let a = pool.alloc(64 << 10).unwrap();
    assert_eq!(a.size(), 64 << 10);
    assert_eq!(a.top() - a.bottom(), a.size());
    assert_eq!(a.guard(), a.bottom() - pg..a.bottom());
    assert_eq!(a.top() % pg, 0);
    touch(&a, 7);
    assert!(pool.guard_of(a.guard().start));
    assert!(pool.guard_of(a.guard().end - 1));
    assert!(!pool.guard_of(a.bottom()));
    assert!(!pool.guard_of(a.top() - 1));
    assert!(!pool.guard_of(&pool as *const _ as usize));
    assert_eq!(pool.live(), 1);
    let bottom = a.bottom();
    pool.free(a);
    assert_eq!((pool.live(), pool.pooled()), (0, 1));
    let b = pool.alloc(64 << 10).unwrap();
    assert_eq!(b.bottom(), bottom, "a freed stack is reused");
    assert_eq!(peek(&b), 7, "a reused stack is not cleared");
    assert_eq!((pool.live(), pool.pooled()), (1, 0));
    // Sizes are rounded up to pages; each size has its own class.
    let odd = pool.alloc(100_000).unwrap();
    assert_eq!(odd.size(), round_up(100_000, pg));
    assert!(pool.guard_of(odd.guard().start));
    touch(&odd, 1);
    let odd_bottom = odd.bottom();
    pool.free(odd);
    let c = pool.alloc(64 << 10).unwrap();
    assert_ne!(c.bottom(), odd_bottom, "stacks are reused per size");
    let again = pool.alloc(round_up(100_000, pg)).unwrap();
    assert_eq!(again.bottom(), odd_bottom);
    let big = pool.alloc(MAX_STACK_SIZE).unwrap();
    assert_eq!(big.size(), MAX_STACK_SIZE);
    touch(&big, 3);
    assert!(pool.guard_of(big.guard().start));
    for s in [b, c, again, big] {
        pool.free(s);
    }
    assert_eq!((pool.live(), pool.pooled()), (0, 4));
}

#[test]
fn invalid_sizes_are_refused() {
    let pool = StackPool::new(StackConfig::default());
    let mut cache = StackCache::new();
    for bad in [0, 1, MIN_STACK_SIZE - 1, MAX_STACK_SIZE + 1, usize::MAX] {
        let want = StackError::InvalidSize {
            requested: bad,
            min: MIN_STACK_SIZE,
            max: MAX_STACK_SIZE,
        };
        assert_eq!(pool.alloc(bad).unwrap_err(), want);
        assert_eq!(cache.alloc(&pool, bad).unwrap_err(), want);
        let msg = want.to_string();
        assert!(
            msg.contains(&bad.to_string()) && msg.contains(&MIN_STACK_SIZE.to_string()),
            "{msg}"
        );
    }
    assert_eq!(pool.live(), 0, "failed allocations are not counted");
    // An invalid default size is not corrected: allocating it fails.
    let zero = StackPool::new(StackConfig {
        default_size: 0,
        ..StackConfig::default()
    });
    assert!(matches!(
        zero.alloc(0),
        Err(StackError::InvalidSize { requested: 0, .. })
    ));
    assert!(matches!(
        StackCache::new().alloc(&zero, 0),
        Err(StackError::InvalidSize { requested: 0, .. })
    ));
    assert_eq!(zero.live(), 0);
}

#[test]
fn the_limit_on_live_stacks() {
    let pool = StackPool::new(StackConfig {
        max_stacks: 10,
        default_size: MIN_STACK_SIZE,
        ..StackConfig::default()
    });
    let v: Vec<_> = (0..10)
        .map(|_| pool.alloc(MIN_STACK_SIZE).unwrap())
        .collect();
    let e = pool.alloc(MIN_STACK_SIZE).unwrap_err();
    assert_eq!(e, StackError::LimitReached { limit: 10 });
    assert!(e.to_string().contains("10 live G stacks"), "{e}");
    let mut cache = StackCache::new();
    assert_eq!(cache.alloc(&pool, MIN_STACK_SIZE).unwrap_err(), e);
    assert_eq!(pool.live(), 10);
    for s in v {
        pool.free(s);
    }
    // Stacks in a cache do not count: a cache that filled itself and
    // took back its stacks does not starve another.
    let a: Vec<_> = (0..10)
        .map(|_| cache.alloc(&pool, MIN_STACK_SIZE).unwrap())
        .collect();
    assert!(cache.alloc(&pool, MIN_STACK_SIZE).is_err());
    for s in a {
        cache.free(&pool, s);
    }
    assert_eq!(pool.live(), 0);
    let mut other = StackCache::new();
    let b: Vec<_> = (0..10)
        .map(|_| other.alloc(&pool, MIN_STACK_SIZE).unwrap())
        .collect();
    assert!(matches!(
        other.alloc(&pool, MIN_STACK_SIZE),
        Err(StackError::LimitReached { limit: 10 })
    ));
    assert_eq!(pool.live(), 10);
    for s in b {
        pool.free(s);
    }
    assert_eq!(pool.live(), 0);
}

#[test]
fn scavenge_releases_beyond_the_high_water_mark() {
    let pool = StackPool::new(StackConfig {
        cache_high_water: 2,
        ..StackConfig::default()
    });
    let v: Vec<_> = (0..6)
        .map(|_| pool.alloc(DEFAULT_STACK_SIZE).unwrap())
        .collect();
    for s in &v {
        touch(s, 7);
        assert!(resident(s.top() - 8));
    }
    let tops: Vec<usize> = v.iter().map(Stack::top).collect();
    for s in v {
        pool.free(s);
    }
    assert_eq!(pool.scavenge(), 4);
    assert_eq!(pool.scavenge(), 0, "released stacks are not released twice");
    assert_eq!((pool.pooled(), pool.released()), (6, 4));
    // The two freed last (still warm) stay resident.
    if under_qemu() {
        eprintln!("residency not checked: qemu-user 7.2 ignores MADV_DONTNEED");
    } else {
        let gone: Vec<bool> = tops.iter().map(|&t| !resident(t - 8)).collect();
        assert_eq!(gone, [true, true, true, true, false, false]);
    }
    // Allocation prefers resident stacks, then takes released ones,
    // which work and read zero.
    let all: Vec<_> = (0..6)
        .map(|_| pool.alloc(DEFAULT_STACK_SIZE).unwrap())
        .collect();
    let first: Vec<usize> = all[..2].iter().map(Stack::top).collect();
    assert_eq!(first, [tops[5], tops[4]]);
    for s in &all[2..] {
        if !under_qemu() {
            assert_eq!(peek(s), 0, "a released page reads zero");
        }
        touch(s, 9);
        assert_eq!(peek(s), 9);
    }
    assert_eq!((pool.pooled(), pool.released()), (0, 0));
    for s in all {
        pool.free(s);
    }
}

#[test]
fn out_of_address_space_is_an_error_naming_it() {
    if under_qemu() {
        eprintln!("skipped under qemu-user: RLIMIT_AS would limit qemu itself");
        return;
    }
    let (status, out) = in_child(|| {
        let pool = StackPool::new(StackConfig::default());
        // Room for the process as it is, plus 64 MiB: less than one
        // largest stack.
        let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
        let pages: u64 = statm.split_whitespace().next().unwrap().parse().unwrap();
        let lim = libc::rlimit {
            rlim_cur: (pages * page_size() as u64 + (64 << 20)) as libc::rlim_t,
            rlim_max: libc::RLIM_INFINITY,
        };
        // SAFETY: lowering the child's own soft limit.
        assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_AS, &lim) }, 0);
        let mut v = Vec::new();
        let err = loop {
            match pool.alloc(MAX_STACK_SIZE) {
                Ok(s) => v.push(s),
                Err(e) => break e,
            }
        };
        format!("{err:?}\n{err}\nlive={}", pool.live())
    });
    assert!(libc::WIFEXITED(status), "child died: {status:#x}: {out}");
    assert!(out.starts_with("OutOfMemory"), "{out}");
    assert!(out.contains(&format!("os error {}", libc::ENOMEM)), "{out}");
    assert!(out.contains("address-space limit (ulimit -v"), "{out}");
}

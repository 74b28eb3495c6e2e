//! The per-P cache: batches traded with the pool, the warm-stack trade,
//! the lock-free hot path and the live count across caches.

use super::*;

#[test]
fn the_cache_trades_half_batches_with_the_pool() {
    let pool = StackPool::new(StackConfig::default());
    let mut cache = StackCache::new();
    let a = cache.alloc(&pool, DEFAULT_STACK_SIZE).unwrap();
    assert_eq!(cache.len(), CACHE_BATCH - 1, "a refill takes half a cache");
    assert_eq!((pool.live(), pool.pooled()), (1, 0));
    cache.free(&pool, a);
    assert_eq!((cache.len(), pool.live()), (CACHE_BATCH, 0));
    // 2 * CACHE_MAX stacks at once: more refills.
    let many: Vec<_> = (0..2 * CACHE_MAX)
        .map(|_| cache.alloc(&pool, DEFAULT_STACK_SIZE).unwrap())
        .collect();
    assert_eq!(pool.live(), 2 * CACHE_MAX);
    for s in many {
        cache.free(&pool, s);
    }
    // The cache filled up, then spilled half back twice.
    assert_eq!(pool.live(), 0);
    assert!(cache.len() <= CACHE_MAX);
    assert_eq!(cache.len() + pool.pooled(), 2 * CACHE_MAX);
    assert!(pool.pooled() >= CACHE_BATCH);
    // Other sizes bypass the cache.
    let before = cache.len();
    let odd = cache.alloc(&pool, 2 * DEFAULT_STACK_SIZE).unwrap();
    cache.free(&pool, odd);
    assert_eq!(cache.len(), before);
    // A size that rounds to the default one is the default size.
    let r = cache.alloc(&pool, DEFAULT_STACK_SIZE - 100).unwrap();
    assert_eq!(r.size(), DEFAULT_STACK_SIZE);
    assert_eq!(cache.len(), before - 1);
    cache.free(&pool, r);
    cache.flush(&pool);
    assert!(cache.is_empty());
    assert_eq!(pool.pooled(), 2 * CACHE_MAX + 1);
}

/// Symptom: a G's first run keeps touching cold stacks although its P
/// just freed a warm one, or the trade loses or duplicates a stack.
#[test]
fn a_first_run_trades_an_untouched_stack_for_the_warmest() {
    let pool = StackPool::new(StackConfig::default());
    let mut spawner = StackCache::new();
    let mut runner = StackCache::new();
    let fresh = spawner.alloc(&pool, DEFAULT_STACK_SIZE).unwrap();
    assert!(fresh.untouched(), "a freshly carved stack is untouched");
    // The runner has nothing to trade: the G keeps its stack.
    let kept = runner.trade_for_warm(&pool, fresh);
    assert!(kept.untouched());
    let kept_bottom = kept.bottom();
    runner.free(&pool, kept);
    // A freed stack is no longer untouched, and the next fresh stack is
    // traded for it; the untouched one waits at the cold end.
    let fresh = spawner.alloc(&pool, DEFAULT_STACK_SIZE).unwrap();
    let fresh_bottom = fresh.bottom();
    let warm = runner.trade_for_warm(&pool, fresh);
    assert_eq!(
        warm.bottom(),
        kept_bottom,
        "not the most recently freed stack"
    );
    assert!(!warm.untouched());
    assert_eq!(runner.len(), 1);
    assert_eq!(pool.live(), 1, "a trade changes no count");
    runner.free(&pool, warm);
    // The warm one is handed out first; the untouched one after it.
    let a = runner.alloc(&pool, DEFAULT_STACK_SIZE).unwrap();
    let b = runner.alloc(&pool, DEFAULT_STACK_SIZE).unwrap();
    assert_eq!((a.bottom(), b.bottom()), (kept_bottom, fresh_bottom));
    assert!(b.untouched());
    // Other sizes are not traded.
    let odd = spawner.alloc(&pool, 2 * DEFAULT_STACK_SIZE).unwrap();
    let odd_bottom = odd.bottom();
    runner.free(&pool, a);
    let odd = runner.trade_for_warm(&pool, odd);
    assert_eq!(odd.bottom(), odd_bottom);
    for st in [b, odd] {
        runner.free(&pool, st);
    }
    runner.flush(&pool);
    spawner.flush(&pool);
    assert_eq!(pool.live(), 0);
}

/// Symptom: the hot path takes the pool lock after all.
#[test]
fn the_cache_hot_path_takes_no_lock() {
    let pool = std::sync::Arc::new(StackPool::new(StackConfig::default()));
    let mut cache = StackCache::new();
    let warm = cache.alloc(&pool, DEFAULT_STACK_SIZE).unwrap();
    cache.free(&pool, warm);
    let locked = pool.synced.lock();
    let (tx, rx) = std::sync::mpsc::channel();
    let p2 = pool.clone();
    std::thread::spawn(move || {
        for _ in 0..1000 {
            let s = cache.alloc(&p2, DEFAULT_STACK_SIZE).unwrap();
            cache.free(&p2, s);
        }
        tx.send(()).unwrap();
    });
    let r = rx.recv_timeout(Duration::from_secs(10));
    drop(locked);
    assert!(
        r.is_ok(),
        "alloc/free through a warm cache waited for the pool lock"
    );
}

#[test]
fn live_counts_across_caches_and_the_pool() {
    let pool = StackPool::new(StackConfig::default());
    let mut c1 = StackCache::new();
    let mut c2 = StackCache::new();
    let v: Vec<_> = (0..40)
        .map(|_| c1.alloc(&pool, DEFAULT_STACK_SIZE).unwrap())
        .collect();
    assert_eq!(pool.live(), 40);
    let mut it = v.into_iter();
    // Freed on another P, and straight to the pool (an M without a P).
    for s in it.by_ref().take(20) {
        c2.free(&pool, s);
    }
    assert_eq!(pool.live(), 20);
    for s in it {
        pool.free(s);
    }
    assert_eq!(pool.live(), 0);
}

#[test]
#[should_panic(expected = "second StackPool")]
fn a_cache_serves_one_pool() {
    let p1 = StackPool::new(StackConfig::default());
    let p2 = StackPool::new(StackConfig::default());
    let mut cache = StackCache::new();
    let s = cache.alloc(&p1, DEFAULT_STACK_SIZE).unwrap();
    cache.free(&p1, s);
    let _ = cache.alloc(&p2, DEFAULT_STACK_SIZE);
}

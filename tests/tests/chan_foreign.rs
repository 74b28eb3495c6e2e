//! Channels used from callbacks on threads the runtime did not create
//! (`runtime::ffi::callback`: the callback runs as a G locked to the
//! foreign thread, on an extra M).

use runtime::chan;
use runtime::select;
use std::time::Duration;
use tests::under_qemu;

#[test]
fn foreign_callbacks_send_and_receive_with_gs() {
    let per = if under_qemu() { 200 } else { 2000 };
    let (tx, rx) = chan::bounded::<usize>(0);
    let (back_tx, back_rx) = chan::bounded::<usize>(0);
    // A G echoes everything back, doubled.
    let echo = runtime::go(move || {
        for v in &rx {
            back_tx.send(v * 2).unwrap();
        }
    });
    let threads: Vec<_> = (0..2)
        .map(|_| {
            let (tx, back_rx) = (tx.clone(), back_rx.clone());
            std::thread::spawn(move || {
                let mut sum = 0;
                for i in 0..per {
                    // Each callback parks twice: on the send (rendezvous)
                    // and on the receive.
                    sum += runtime::ffi::callback(|| {
                        assert!(runtime::current().is_some(), "a callback runs as a G");
                        tx.send(i).unwrap();
                        back_rx.recv().unwrap()
                    })
                    .unwrap();
                }
                sum
            })
        })
        .collect();
    drop(tx);
    let total: usize = threads.into_iter().map(|t| t.join().unwrap()).sum();
    echo.join().unwrap();
    // Which reply went to which thread is racy; the sum is not.
    assert_eq!(total, 2 * per * (per - 1));
}

#[test]
fn foreign_callback_select_with_timeout() {
    let (tx, rx) = chan::bounded::<u8>(0);
    // The callback says when its select has timed out; only then is the
    // value sent, so the order does not depend on how fast the thread runs.
    let (timed_out_tx, timed_out) = chan::bounded::<()>(1);
    let t = std::thread::spawn(move || {
        runtime::ffi::callback(move || {
            let first = select! {
                recv(rx) -> v => v.ok(),
                timeout(Duration::from_millis(20)) => None,
            };
            timed_out_tx.send(()).unwrap();
            let second = rx.recv_timeout(Duration::from_secs(30)).ok();
            (first, second)
        })
        .unwrap()
    });
    timed_out.recv().unwrap();
    let g = runtime::go(move || tx.send(5).unwrap());
    assert_eq!(t.join().unwrap(), (None, Some(5)));
    g.join().unwrap();
}

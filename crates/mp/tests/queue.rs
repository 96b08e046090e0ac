//! Queues under both start methods: many producers and consumers across processes, exact
//! sizes, bounded waits, timeouts, close, and a producer killed while holding the lock.

mod common;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use bingfa_mp::{IpcError, Process, Queue, StartMethod};

bingfa_mp::spawn_entry!();

fn producer(args: (Queue<(u32, u32)>, u32, u32)) {
    let (q, id, n) = args;
    for i in 0..n {
        q.put((id, i)).unwrap();
    }
}

fn consumer(q: Queue<Option<(u32, u32)>>) -> Vec<(u32, u32)> {
    let mut got = Vec::new();
    while let Some(item) = q.get().unwrap() {
        got.push(item);
    }
    got
}

fn many_producers_many_consumers(m: StartMethod) {
    // Producers put (id, seq); consumers stop at a None sentinel.
    let q: Queue<Option<(u32, u32)>> = Queue::new().unwrap();
    fn prod(args: (Queue<Option<(u32, u32)>>, u32, u32)) {
        let (q, id, n) = args;
        for i in 0..n {
            q.put(Some((id, i))).unwrap();
        }
    }
    let (producers, consumers, per) = (3u32, 3, 2000u32);
    let ps: Vec<_> = (0..producers)
        .map(|id| {
            Process::builder()
                .start_method(m)
                .spawn(prod, (q.clone(), id, per))
                .unwrap()
        })
        .collect();
    let cs: Vec<_> = (0..consumers)
        .map(|_| {
            Process::builder()
                .start_method(m)
                .spawn(consumer, q.clone())
                .unwrap()
        })
        .collect();
    for p in ps {
        p.join().unwrap();
    }
    for _ in 0..consumers {
        q.put(None).unwrap();
    }
    let mut all = Vec::new();
    for c in cs {
        let got = c.join().unwrap();
        // Each producer's items reach any one consumer in the order they were put.
        for id in 0..producers {
            let seq: Vec<u32> = got.iter().filter(|x| x.0 == id).map(|x| x.1).collect();
            assert!(seq.windows(2).all(|w| w[0] < w[1]));
        }
        all.extend(got);
    }
    assert_eq!(all.len(), (producers * per) as usize);
    let unique: HashSet<_> = all.iter().collect();
    assert_eq!(unique.len(), all.len(), "an item was consumed twice");
    assert_eq!(q.qsize(), 0);
}

fn exact_qsize_and_fifo(m: StartMethod) {
    let q: Queue<(u32, u32)> = Queue::new().unwrap();
    let p = Process::builder()
        .start_method(m)
        .spawn(producer, (q.clone(), 9, 500))
        .unwrap();
    p.join().unwrap();
    // Everything the child put is in the queue once it has exited: no feeder thread to lose it.
    assert_eq!(q.qsize(), 500);
    assert!(!q.empty());
    for i in 0..500 {
        assert_eq!(q.get_nowait().unwrap(), (9, i));
    }
    assert!(q.empty());
    assert!(matches!(q.get_nowait(), Err(IpcError::Empty)));
}

fn bounded_blocks_and_times_out(m: StartMethod) {
    let q: Queue<u32> = Queue::bounded(2).unwrap();
    assert_eq!(q.maxsize(), 2);
    q.put(1).unwrap();
    q.put_nowait(2).unwrap();
    assert!(q.full());
    assert!(matches!(q.put_nowait(3), Err(IpcError::Full)));
    let t = Instant::now();
    assert!(matches!(
        q.put_timeout(3, Duration::from_millis(40)),
        Err(IpcError::Full)
    ));
    assert!(t.elapsed() >= Duration::from_millis(40));
    // A child frees room after a while; the blocked put completes.
    fn take_later(q: Queue<u32>) -> u32 {
        std::thread::sleep(Duration::from_millis(100));
        q.get().unwrap()
    }
    let p = Process::builder()
        .start_method(m)
        .spawn(take_later, q.clone())
        .unwrap();
    q.put_timeout(3, Duration::from_secs(10)).unwrap();
    assert_eq!(p.join().unwrap(), 1);
    assert_eq!(q.get().unwrap(), 2);
    assert_eq!(q.get().unwrap(), 3);
    let t = Instant::now();
    assert!(matches!(
        q.get_timeout(Duration::from_millis(40)),
        Err(IpcError::Empty)
    ));
    assert!(t.elapsed() >= Duration::from_millis(40));
}

fn get_blocks_until_put_from_child(m: StartMethod) {
    let q: Queue<String> = Queue::new().unwrap();
    fn later(q: Queue<String>) {
        std::thread::sleep(Duration::from_millis(100));
        q.put("late".into()).unwrap();
    }
    let p = Process::builder()
        .start_method(m)
        .spawn(later, q.clone())
        .unwrap();
    assert_eq!(q.get_timeout(Duration::from_secs(10)).unwrap(), "late");
    p.join().unwrap();
}

fn large_messages_and_wraparound(_m: StartMethod) {
    // A 1 MiB ring forces many wraps; messages of odd sizes must come out intact.
    let q: Queue<Vec<u8>> = Queue::with_limits(0, 1 << 20).unwrap();
    for round in 0..50u32 {
        let sizes = [1usize, 7, 300_000, 13, 200_000];
        for (k, &s) in sizes.iter().enumerate() {
            q.put(vec![(round as usize + k) as u8; s]).unwrap();
        }
        for (k, &s) in sizes.iter().enumerate() {
            let v = q.get().unwrap();
            assert_eq!(v.len(), s);
            assert!(v.iter().all(|&b| b == (round as usize + k) as u8));
        }
    }
    let too_big = vec![0u8; 2 << 20];
    assert!(matches!(
        q.put(too_big),
        Err(IpcError::MessageTooLarge { .. })
    ));
}

fn close_is_per_handle(_m: StartMethod) {
    let q: Queue<u8> = Queue::new().unwrap();
    let other = q.clone();
    q.put(1).unwrap();
    q.close();
    assert!(matches!(q.put(2), Err(IpcError::Closed)));
    assert!(matches!(q.get(), Err(IpcError::Closed)));
    // What was put before close is still there for the other handle.
    assert_eq!(other.get().unwrap(), 1);
}

fn killed_while_holding_lock(m: StartMethod) {
    // A producer hammers the queue and is SIGKILLed at a random moment, possibly inside the
    // critical section. Nobody hangs, and every item it managed to publish is intact.
    let q: Queue<u64> = Queue::new().unwrap();
    fn hammer(q: Queue<u64>) {
        for i in 0.. {
            q.put(i).unwrap();
        }
    }
    for _ in 0..5 {
        let p = Process::builder()
            .start_method(m)
            .spawn(hammer, q.clone())
            .unwrap();
        std::thread::sleep(Duration::from_millis(20));
        p.kill().unwrap();
        let _ = p.join();
        let n = q.qsize();
        for expect in 0..n as u64 {
            assert_eq!(q.get_timeout(Duration::from_secs(5)).unwrap(), expect);
        }
        assert!(q.empty());
        q.put(42).unwrap();
        assert_eq!(q.get().unwrap(), 42);
    }
}

fn largest_message_fits_wherever_the_ring_stands(_m: StartMethod) {
    // A record must fit before the wrap point or after it; capping messages at half the ring
    // makes an empty queue always able to take the largest one.
    let q: Queue<()> = Queue::with_limits(0, 1 << 20).unwrap();
    let max = q.max_message();
    assert_eq!(max, (1 << 19) - 8);
    q.put_bytes_blocking(&vec![1u8; 400_000]).unwrap();
    assert_eq!(q.get_bytes().unwrap().len(), 400_000);
    for _ in 0..3 {
        q.put_bytes_blocking(&vec![2u8; max]).unwrap();
        assert_eq!(q.get_bytes().unwrap().len(), max);
    }
    assert!(matches!(
        q.put_bytes_blocking(&vec![0u8; max + 1]),
        Err(IpcError::MessageTooLarge { .. })
    ));
}

fn every_sleeper_wakes_for_a_burst(m: StartMethod) {
    // Consumers (then producers) asleep on the same futex word, and a burst that satisfies them
    // all at once: the first put or get clears the "somebody sleeps" bit, so the later ones
    // make no system call; every sleeper must still wake and find its item (or its room).
    fn take(q: Queue<u32>) -> u32 {
        q.get_timeout(Duration::from_secs(20)).unwrap()
    }
    fn give(args: (Queue<u32>, u32)) {
        args.0.put_timeout(args.1, Duration::from_secs(20)).unwrap();
    }
    let k = 4;
    let q: Queue<u32> = Queue::new().unwrap();
    let cs: Vec<_> = (0..k)
        .map(|_| {
            Process::builder()
                .start_method(m)
                .spawn(take, q.clone())
                .unwrap()
        })
        .collect();
    // Long past any spin: they are asleep (or still starting, which must work as well).
    std::thread::sleep(Duration::from_millis(300));
    for i in 0..k {
        q.put(i).unwrap();
    }
    let mut got: Vec<u32> = cs.into_iter().map(|c| c.join().unwrap()).collect();
    got.sort();
    assert_eq!(got, (0..k).collect::<Vec<_>>());
    assert!(q.empty());

    let q: Queue<u32> = Queue::bounded(1).unwrap();
    q.put(100).unwrap();
    let ps: Vec<_> = (0..k)
        .map(|i| {
            Process::builder()
                .start_method(m)
                .spawn(give, (q.clone(), i))
                .unwrap()
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    let mut got: Vec<u32> = (0..=k)
        .map(|_| q.get_timeout(Duration::from_secs(20)).unwrap())
        .collect();
    for p in ps {
        p.join().unwrap();
    }
    assert_eq!(got[0], 100);
    got.sort();
    assert_eq!(got, vec![0, 1, 2, 3, 100]);
}

fn small_and_large_messages_wrap_the_ring(_m: StartMethod) {
    // Messages on both sides of the in-place limit (small ones are encoded straight into the
    // ring, bigger ones copied in), through a small ring several times round, with a backlog:
    // every one comes out whole and in order, wherever the ring's end fell.
    let q: Queue<(u32, String)> = Queue::with_limits(0, 1 << 20).unwrap();
    let body = |i: u32| "x".repeat((i as usize * 37) % 600);
    let n = 20_000u32;
    let backlog = 500;
    for i in 0..n + backlog {
        if i < n {
            q.put((i, body(i))).unwrap();
        }
        if i >= backlog {
            let k = i - backlog;
            assert_eq!(q.get_nowait().unwrap(), (k, body(k)));
        }
    }
    assert!(q.empty());
}

fn consumers_killed_while_waiting_leave_the_queue_working(m: StartMethod) {
    // Consumers killed while blocked in get (asleep, or registering as sleepers under the
    // producers' lock): their mark on the futex word and any lock they held must not stop a
    // later put or get.
    fn wait_forever(q: Queue<u32>) {
        let _ = q.get();
    }
    for round in 0..3u64 {
        let q: Queue<u32> = Queue::new().unwrap();
        let cs: Vec<_> = (0..3)
            .map(|_| {
                Process::builder()
                    .start_method(m)
                    .spawn(wait_forever, q.clone())
                    .unwrap()
            })
            .collect();
        std::thread::sleep(Duration::from_millis(100 + 50 * round));
        for c in cs {
            c.kill().unwrap();
            let _ = c.join();
        }
        for i in 0..100 {
            q.put(i).unwrap();
        }
        for i in 0..100 {
            assert_eq!(q.get_timeout(Duration::from_secs(5)).unwrap(), i);
        }
        assert!(q.empty());
    }
}

both_methods!(
    consumers_killed_while_waiting_leave_the_queue_working,
    small_and_large_messages_wrap_the_ring,
    every_sleeper_wakes_for_a_burst,
    largest_message_fits_wherever_the_ring_stands,
    many_producers_many_consumers,
    exact_qsize_and_fifo,
    bounded_blocks_and_times_out,
    get_blocks_until_put_from_child,
    large_messages_and_wraparound,
    close_is_per_handle,
    killed_while_holding_lock,
);

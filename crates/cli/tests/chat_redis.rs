//! One chat room across several servers through a Redis backplane (`--backplane`), each
//! server the real binary under a different model (fork and prefork included), on a private
//! `redis-server` this suite starts itself (`--save '' --appendonly no`, a free port).
//!
//! - `one_room_one_order_unique_names_across_servers`: exact welcome/joined/left lines, names
//!   taken case-insensitively on another server, `/who` of the whole room, two senders on two
//!   servers interleaving 40 lines each with identical sequences at members on a third server
//!   and on the sender's own, an admin-socket announcement reaching members on all three, a name
//!   freed room-wide at `/quit`; the fork server stopped with SIGTERM has its members' `left`
//!   seen at another server, and once all stop no key is left in Redis.
//! - `a_killed_servers_members_are_reported_left`: a SIGKILLed prefork server's members are
//!   reported `* NAME left` within the heartbeat's bound, and their names are free.
//! - `redis_restarted_mid_conversation`: Redis SIGKILLed gives the lost notice once at every
//!   member and delivery stays local; Redis restarted gives the restored notice once,
//!   cross-server delivery resumes and `/who` is whole again.
//! - `every_model_shares_the_room`: a server of each model in turn joins an epoll one: lines
//!   both ways, and its member's `left` when it is stopped.

#[path = "chat_redis/support.rs"]
mod support;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};
use support::{Member, Redis, Server};

#[test]
fn one_room_one_order_unique_names_across_servers() {
    let redis = Redis::start();
    let s1 = Server::start("epoll", &redis);
    let s2 = Server::start("prefork", &redis);
    let admin = std::env::temp_dir().join(format!("bingfa-redis-{}.sock", std::process::id()));
    let s3 = Server::start_with("fork", &redis, &["--admin-socket", admin.to_str().unwrap()]);
    redis.wait_subscribers(3);

    let (mut alice, w) = Member::join(&s1, "alice");
    assert_eq!(w, "* you are alice; online: alice");
    let (mut bob, w) = Member::join(&s2, "bob");
    assert_eq!(w, "* you are bob; online: alice, bob");
    assert_eq!(alice.line(), "* bob joined");

    // Names are unique room-wide, case-insensitively, whichever server is asked.
    let mut taken = Member::connect(&s2);
    taken.say("ALICE");
    assert_eq!(taken.line(), "! name taken; try another name");
    let mut taken3 = Member::connect(&s3);
    taken3.say("Bob");
    assert_eq!(taken3.line(), "! name taken; try another name");
    taken3.say("carol");
    assert_eq!(taken3.line(), "* you are carol; online: alice, bob, carol");
    let mut carol = taken3;
    assert_eq!(alice.line(), "* carol joined");
    assert_eq!(bob.line(), "* carol joined");

    carol.say("/who");
    assert_eq!(carol.line(), "* online (3): alice, bob, carol");
    let (mut dave, w) = Member::join(&s1, "dave");
    assert_eq!(w, "* you are dave; online: alice, bob, carol, dave");
    for m in [&mut alice, &mut bob, &mut carol] {
        assert_eq!(m.line(), "* dave joined");
    }

    // Two senders on different servers, interleaving: every member sees one sequence, the
    // senders' own server included.
    const N: usize = 40;
    let send = |mut m: Member, tag: &'static str| {
        std::thread::spawn(move || {
            for i in 0..N {
                m.say(&format!("{tag}{i}"));
            }
            m
        })
    };
    let (ta, tb) = (send(alice, "a"), send(bob, "b"));
    let (mut alice, mut bob) = (ta.join().unwrap(), tb.join().unwrap());
    let read = |m: &mut Member, n: usize| (0..n).map(|_| m.line()).collect::<Vec<_>>();
    let at_carol = read(&mut carol, 2 * N);
    let at_dave = read(&mut dave, 2 * N);
    assert_eq!(at_carol, at_dave, "one order at every member");
    let only = |v: &[String], p: &str| {
        v.iter()
            .filter(|l| l.starts_with(p))
            .cloned()
            .collect::<Vec<_>>()
    };
    assert_eq!(read(&mut alice, N), only(&at_carol, "bob: "));
    assert_eq!(read(&mut bob, N), only(&at_carol, "alice: "));
    assert_eq!(
        only(&at_carol, "alice: "),
        (0..N).map(|i| format!("alice: a{i}")).collect::<Vec<_>>()
    );

    // An announcement on one server is a line of the one room.
    assert!(Server::announce(&admin, "maintenance at noon"));
    for m in [&mut alice, &mut bob, &mut carol, &mut dave] {
        assert_eq!(m.line(), "* admin: maintenance at noon");
    }

    alice.say("/quit");
    assert_eq!(alice.line(), "* bye");
    for m in [&mut bob, &mut carol, &mut dave] {
        assert_eq!(m.line(), "* alice left");
    }
    // Freed room-wide: another server may give the name out again.
    let (_alice2, w) = Member::join(&s3, "Alice");
    assert_eq!(w, "* you are Alice; online: bob, carol, dave, Alice");
    assert_eq!(bob.line(), "* Alice joined");
    assert_eq!(redis.cmd("HLEN bingfa:chat:lobby:members"), ":4\r\n");

    // A server stopped with SIGTERM says its members' farewells to the room before it exits.
    drop(s3);
    let left: BTreeSet<String> = (0..2).map(|_| bob.line()).collect();
    let expect: BTreeSet<String> = ["* carol left", "* Alice left"].map(String::from).into();
    assert_eq!(left, expect);
    let deadline = Instant::now() + Duration::from_secs(10);
    while redis.cmd("HLEN bingfa:chat:lobby:members") != ":2\r\n" {
        assert!(
            Instant::now() < deadline,
            "the stopped server's names stayed claimed"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // Once every server has stopped, nothing of the room is left in Redis.
    drop((alice, bob, carol, dave, s1, s2));
    assert_eq!(redis.cmd("KEYS *"), "*0\r\n");
}

#[test]
fn a_killed_servers_members_are_reported_left() {
    let redis = Redis::start();
    let s1 = Server::start("thread", &redis);
    let mut s2 = Server::start("prefork", &redis);
    redis.wait_subscribers(2);
    let (mut alice, _) = Member::join(&s1, "alice");
    let (_bob, _) = Member::join(&s2, "bob");
    let (_eve, _) = Member::join(&s2, "eve");
    assert_eq!(alice.line(), "* bob joined");
    assert_eq!(alice.line(), "* eve joined");

    let workers = s2.children();
    assert_eq!(workers.len(), 2, "two prefork workers");
    s2.kill();
    let t = Instant::now();
    let left: BTreeSet<String> = (0..2).map(|_| alice.line()).collect();
    let expect: BTreeSet<String> = ["* bob left", "* eve left"].map(String::from).into();
    assert_eq!(left, expect);
    // The bound: the heartbeat's TTL (3 s) plus a reaping tick; generous for a loaded machine.
    assert!(
        t.elapsed() < Duration::from_secs(8),
        "took {:?}",
        t.elapsed()
    );
    let (_bob2, w) = Member::join(&s1, "BOB");
    assert_eq!(w, "* you are BOB; online: alice, BOB");
    // The orphaned workers shut down (told by the kernel) without waiting on the dead
    // parent's name service for each member's release.
    let deadline = Instant::now() + Duration::from_secs(10);
    // SAFETY: signal 0 only checks that the process exists.
    while workers.iter().any(|&p| unsafe { libc::kill(p, 0) } == 0) {
        assert!(
            Instant::now() < deadline,
            "the workers outlived their parent"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn redis_restarted_mid_conversation() {
    let mut redis = Redis::start();
    let s1 = Server::start("async", &redis);
    let s2 = Server::start("prefork", &redis);
    redis.wait_subscribers(2);
    let (mut alice, _) = Member::join(&s1, "alice");
    let (mut amy, _) = Member::join(&s1, "amy");
    let (mut bob, _) = Member::join(&s2, "bob");
    assert_eq!(alice.until("* bob joined", 1), ["* amy joined"]);
    assert_eq!(amy.line(), "* bob joined");
    bob.say("before");
    assert_eq!(alice.line(), "bob: before");
    assert_eq!(amy.line(), "bob: before");

    redis.kill();
    for m in [&mut alice, &mut amy, &mut bob] {
        assert_eq!(m.line(), "* room link lost, messages stay local");
    }
    // Each server keeps serving its own members.
    alice.say("only here");
    assert_eq!(amy.line(), "alice: only here");

    redis.restart();
    for m in [&mut alice, &mut amy, &mut bob] {
        assert_eq!(
            m.line(),
            "* room link restored",
            "said once, after the lost one"
        );
    }
    redis.wait_subscribers(2);
    bob.say("across again");
    assert_eq!(alice.line(), "bob: across again");
    assert_eq!(amy.line(), "bob: across again");
    amy.say("and back");
    assert_eq!(
        bob.line(),
        "amy: and back",
        "bob never saw the local-only line"
    );
    // The heartbeat claims the names again in the new Redis: /who is the whole room again.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        alice.say("/who");
        let who = alice.line();
        if let Some(list) = who.strip_prefix("* online (3): ") {
            let names: BTreeSet<&str> = list.split(", ").collect();
            assert_eq!(names, ["alice", "amy", "bob"].into());
            break;
        }
        assert!(
            Instant::now() < deadline,
            "/who never listed the room: {who}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn every_model_shares_the_room() {
    let redis = Redis::start();
    let hub = Server::start("epoll", &redis);
    redis.wait_subscribers(1);
    let (mut here, _) = Member::join(&hub, "here");
    for model in bingfa_net::Model::ALL {
        let name = format!("m-{model}");
        let s = Server::start(model.name(), &redis);
        redis.wait_subscribers(2);
        let (mut there, w) = Member::join(&s, &name);
        assert_eq!(w, format!("* you are {name}; online: here, {name}"));
        assert_eq!(here.line(), format!("* {name} joined"));
        there.say("hello");
        assert_eq!(here.line(), format!("{name}: hello"));
        here.say("hi back");
        assert_eq!(there.line(), "here: hi back");
        // Stopped gracefully: its member's farewell still reaches the room.
        drop(s);
        assert_eq!(here.line(), format!("* {name} left"), "under {model}");
    }
}

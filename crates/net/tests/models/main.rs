//! One suite, every model: small test protocols that exercise each part of the Session contract
//! (echo, hub broadcast, a passive/active data channel streaming a file, the connection limit,
//! the idle timeout, graceful shutdown, named timers and blocking-pool completions), run under
//! all ten models plus edge-triggered epoll.
//!
//! Each server runs in its own process: this test binary re-executes itself with
//! `BINGFA_NET_TEST_SERVER` set, running only `server_main`, which serves until SIGTERM. So
//! `fork` and `prefork` never fork the multi-threaded test harness, and the shutdown test can
//! send a real signal and check the exit status.

mod bulk;
mod burst;
mod channels;
mod descriptors;
mod faces;
mod harness;
mod lifecycle;
mod limits;
mod protocols;
mod relay;
mod timers;
mod traffic;

use bingfa_net::{Config, Model};
use harness::Client;
use protocols::Echo;
use std::net::TcpListener;

/// Runs only in the re-executed child (`BINGFA_NET_TEST_SERVER` set): serve until SIGTERM.
#[test]
fn server_main() {
    harness::run_server();
}

bingfa_testkit::for_each_model! {
    #[test] fn echo() { crate::traffic::echo(M, E) }
    #[test] fn broadcast() { crate::traffic::broadcast(M, E) }
    #[test] fn slow_receiver() { crate::traffic::slow_receiver(M, E) }
    #[test] fn data_channel() { crate::traffic::data_channel(M, E) }
    #[test] fn max_connections() { crate::limits::max_connections(M, E) }
    #[test] fn idle_timeout() { crate::limits::idle_timeout(M, E) }
    #[test] fn hangup_while_paused() { crate::limits::hangup_while_paused(M, E) }
    #[test] fn shutdown() { crate::lifecycle::shutdown(M, E) }
    #[test] fn parent_killed() { crate::lifecycle::parent_killed(M, E) }
    #[test] fn two_listeners() { crate::lifecycle::two_listeners(M, E) }
    #[test] fn per_ip_limit() { crate::limits::per_ip_limit(M, E) }
    #[test] fn fd_exhaustion() { crate::descriptors::fd_exhaustion(M, E) }
    #[test] fn idle_clients_hold_nothing() { crate::limits::idle_clients_hold_nothing(M, E) }
    #[test] fn child_killed() { crate::lifecycle::child_killed(M, E) }
    #[test] fn process_exit_reported() { crate::lifecycle::process_exit_reported(M, E) }
    #[test] fn passive_range() { crate::channels::passive_range(M, E) }
    #[test] fn passive_peer_only() { crate::channels::passive_peer_only(M, E) }
    #[test] fn channel_pause() { crate::channels::channel_pause(M, E) }
    #[test] fn tls_without_layer() { crate::channels::tls_without_layer(M, E) }
    #[test] fn injector() { crate::faces::injector(M, E) }
    #[test] fn refusal_per_listener() { crate::faces::refusal_per_listener(M, E) }
    #[test] fn unix_listener() { crate::faces::unix_listener(M, E) }
    #[test] fn unix_outside_the_budget() { crate::faces::unix_outside_the_budget(M, E) }
    #[test] fn slow_receiver_evicted() { crate::faces::slow_receiver_evicted(M, E) }
    #[test] fn relay_link_lost() { crate::relay::relay_link_lost(M, E) }
    #[test] fn link_burst() { crate::relay::link_burst(M, E) }
    #[test] fn named_timers() { crate::timers::named_timers(M, E) }
    #[test] fn task_done() { crate::timers::task_done(M, E) }
    #[test] fn task_after_hangup() { crate::timers::task_after_hangup(M, E) }
    #[test] fn big_pipeline() { crate::bulk::big_pipeline(M, E) }
    #[test] fn paused_input_bounded() { crate::bulk::paused_input_bounded(M, E) }
    #[test] fn reset_in_flight() { crate::bulk::reset_in_flight(M, E) }
    #[test] fn accept_burst() { crate::burst::accept_burst(M, E) }
}

#[test]
fn model_names_parse() {
    for m in Model::ALL {
        assert_eq!(m.name().parse::<Model>().unwrap(), m);
        assert_eq!(m.to_string(), m.name());
    }
    assert!("nope".parse::<Model>().is_err());
    assert_eq!(Model::default(), Model::Epoll);
}

/// The in-process API: start on a thread, serve, stop.
#[test]
fn in_process_handle() {
    let mut config = Config::new("echo", "127.0.0.1:0".parse().unwrap());
    config.model = Model::Poll;
    config.handle_signals = false;
    config.announce = false;
    let handle = bingfa_net::Server::bind(config, Echo)
        .unwrap()
        .start()
        .unwrap();
    let mut c = Client::connect(handle.local_addrs()[0]);
    c.send("in-process");
    c.expect("in-process");
    handle.stop().unwrap();
    c.expect("bye shutdown");
}

/// SO_REUSEPORT must not let a second server silently share a port someone already holds.
#[test]
fn epoll_refuses_a_port_in_use() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let mut config = Config::new("echo", taken.local_addr().unwrap());
    config.model = Model::Epoll;
    config.handle_signals = false;
    assert!(matches!(
        bingfa_net::Server::bind(config, Echo),
        Err(bingfa_net::Error::Bind { .. })
    ));
}

//! 10 people share one bank card; each swipe takes 1 yuan, and the card allows at most 500
//! swipes a day. Every person tries 100 swipes, so exactly 500 succeed, whoever gets them.
//! Run with threads (a `Mutex`) and with processes (a shared `Value` and its lock): the final
//! balance is exact both ways.
//!
//! `cargo run -p bingfa-mp --example pos_terminal [-- --fork]`

use std::sync::{Arc, Mutex};

use bingfa_mp::{Process, StartMethod, Value};
use bytemuck::{Pod, Zeroable};

/// How many people share the card (one thread or process each).
pub(crate) const PEOPLE: u32 = 10;
/// How many swipes each person tries.
pub(crate) const TRIES: u32 = 100;
/// The most swipes the card allows in a day: exactly this many succeed.
pub(crate) const DAILY_LIMIT: u32 = 500;
/// Yuan on the card before anyone swipes.
pub(crate) const START_BALANCE: i64 = 2000;

/// The card: plain data, so it can live in shared memory.
#[repr(C)]
#[derive(Debug, Clone, Copy, Pod, Zeroable, PartialEq, Eq)]
pub(crate) struct Card {
    /// Yuan left on the card.
    pub(crate) balance: i64,
    /// Swipes that succeeded today (never more than [`DAILY_LIMIT`]).
    pub(crate) swipes: u32,
    /// Unused: fills the struct to a multiple of 8 bytes, since `Pod` data may have no
    /// hidden padding.
    pub(crate) _pad: u32,
}

/// One swipe, if the daily limit allows. The check and the update happen under one lock.
fn swipe(card: &mut Card) -> bool {
    if card.swipes >= DAILY_LIMIT {
        return false;
    }
    card.swipes += 1;
    card.balance -= 1;
    true
}

/// With threads: returns the card and how many swipes each person got.
pub(crate) fn with_threads() -> (Card, Vec<u32>) {
    let card = Arc::new(Mutex::new(Card {
        balance: START_BALANCE,
        swipes: 0,
        _pad: 0,
    }));
    let people: Vec<_> = (0..PEOPLE)
        .map(|i| {
            let card = card.clone();
            std::thread::Builder::new()
                .name(format!("person-{i}"))
                .spawn(move || {
                    (0..TRIES)
                        .filter(|_| swipe(&mut card.lock().unwrap()))
                        .count() as u32
                })
                .unwrap()
        })
        .collect();
    let got = people.into_iter().map(|h| h.join().unwrap()).collect();
    let card = *card.lock().unwrap();
    (card, got)
}

fn person(card: Value<Card>) -> u32 {
    (0..TRIES)
        .filter(|_| swipe(&mut card.lock().unwrap()))
        .count() as u32
}

/// With processes: the card is a `Value<Card>` in shared memory.
pub(crate) fn with_processes(m: StartMethod) -> (Card, Vec<u32>) {
    let card = Value::new(Card {
        balance: START_BALANCE,
        swipes: 0,
        _pad: 0,
    })
    .unwrap();
    let people: Vec<_> = (0..PEOPLE)
        .map(|i| {
            Process::builder()
                .name(format!("person-{i}"))
                .start_method(m)
                .spawn(person, card.clone())
                .unwrap()
        })
        .collect();
    let got = people.into_iter().map(|p| p.join().unwrap()).collect();
    (card.get(), got)
}

#[allow(dead_code)]
fn main() {
    let _rt = bingfa_mp::init();
    let m = if std::env::args().any(|a| a == "--fork") {
        StartMethod::Fork
    } else {
        StartMethod::Spawn
    };
    let (card, got) = with_threads();
    println!(
        "threads:   balance {} yuan after {} swipes; per person {got:?}",
        card.balance, card.swipes
    );
    let (card, got) = with_processes(m);
    println!(
        "processes: balance {} yuan after {} swipes; per person {got:?}",
        card.balance, card.swipes
    );
    println!(
        "expected:  balance {} yuan after {DAILY_LIMIT} swipes",
        START_BALANCE - DAILY_LIMIT as i64
    );
}

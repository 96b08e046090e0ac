//! The model table, written once: every model of bingfa-net, plus epoll edge-triggered (a
//! different readiness discipline under the same model). [`for_each_model!`](crate::for_each_model)
//! expands a suite once per row, as a module named after the row, with two constants in scope:
//! `M` (the [`Model`]) and `E` (edge-triggered or not).

use crate::Model;

/// The rows the table runs beyond `Model::ALL` in level-triggered form: `(model, edge)`.
pub const EDGE_CASES: [(Model, bool); 1] = [(Model::Epoll, true)];

/// Runs a suite under every model: each item given is placed in one module per model
/// (`iterative`, `fork`, …, `epoll`, `epoll_edge`, `r#async`, `uring`) that sees the caller's scope
/// (`use super::*`) and two constants, `M: Model` and `E: bool` (edge-triggered epoll). A test
/// `every_model_is_tested` is added beside them: it fails when bingfa-net gains a model the
/// table does not list.
///
/// ```ignore
/// bingfa_testkit::for_each_model! {
///     #[test] fn echo() { crate::traffic::echo(M, E) }
/// }
/// ```
#[macro_export]
macro_rules! for_each_model {
    ($($items:tt)*) => {
        $crate::__for_each_row! {
            { $($items)* }
            iterative => Iterative, false;
            fork => Fork, false;
            thread => Thread, false;
            threadpool => ThreadPool, false;
            prefork => Prefork, false;
            select => Select, false;
            poll => Poll, false;
            epoll => Epoll, false;
            epoll_edge => Epoll, true;
            r#async => Async, false;
            uring => Uring, false;
        }
    };
}

/// The expansion behind [`for_each_model!`]: one module per row.
#[doc(hidden)]
#[macro_export]
macro_rules! __for_each_row {
    ($items:tt $($name:ident => $model:ident, $edge:expr;)*) => {
        $(
            mod $name {
                #[allow(unused_imports)]
                use super::*;
                #[allow(dead_code)]
                const M: $crate::Model = $crate::Model::$model;
                #[allow(dead_code)]
                const E: bool = $edge;
                $crate::__items! $items
            }
        )*
        /// The table covers `Model::ALL` and edge-triggered epoll: a new model cannot be added
        /// without its tests.
        #[test]
        fn every_model_is_tested() {
            $crate::assert_every_model_listed(&[$(($crate::Model::$model, $edge)),*]);
        }
    };
}

/// Strips the braces from the items handed to [`for_each_model!`].
#[doc(hidden)]
#[macro_export]
macro_rules! __items {
    ($($items:tt)*) => { $($items)* };
}

/// Panics unless `listed` holds every model of `Model::ALL` (level-triggered) and every row of
/// [`EDGE_CASES`].
pub fn assert_every_model_listed(listed: &[(Model, bool)]) {
    for m in Model::ALL {
        assert!(listed.contains(&(m, false)), "{m} has no tests");
    }
    for case in EDGE_CASES {
        assert!(
            listed.contains(&case),
            "{} edge-triggered has no tests",
            case.0
        );
    }
}

/// The command-line arguments that select a model for the `bingfa` binary:
/// `--model NAME`, and `--edge-triggered` when `edge`.
pub fn model_args(model: Model, edge: bool) -> Vec<String> {
    let mut args = vec!["--model".to_string(), model.name().to_string()];
    if edge {
        args.push("--edge-triggered".to_string());
    }
    args
}

#[cfg(test)]
mod tests {
    use super::*;

    crate::for_each_model! {
        #[test]
        fn constants_in_scope() {
            assert!(Model::ALL.contains(&M));
            assert!(!E || M == Model::Epoll);
        }
    }

    #[test]
    fn a_missing_model_is_caught() {
        let partial = [(Model::Epoll, false)];
        assert!(std::panic::catch_unwind(|| assert_every_model_listed(&partial)).is_err());
    }

    #[test]
    fn edge_arguments() {
        assert_eq!(
            model_args(Model::Epoll, true),
            ["--model", "epoll", "--edge-triggered"]
        );
        assert_eq!(model_args(Model::Poll, false), ["--model", "poll"]);
    }
}

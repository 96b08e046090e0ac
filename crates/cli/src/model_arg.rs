//! `--model` as clap sees it: parsed by `Model`'s own `FromStr` (aliases included), and with
//! the ten names as its possible values, so `--help` lists them and a typo is answered with
//! the list.

use bingfa_net::Model;
use clap::builder::{PossibleValue, TypedValueParser};

/// The value parser of every `--model` flag: `#[arg(long, value_parser = ModelParser)]`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ModelParser;

impl TypedValueParser for ModelParser {
    type Value = Model;

    fn parse_ref(
        &self,
        cmd: &clap::Command,
        _arg: Option<&clap::Arg>,
        value: &std::ffi::OsStr,
    ) -> Result<Model, clap::Error> {
        let text = value.to_string_lossy();
        text.parse().map_err(|e: bingfa_net::UnknownModel| {
            clap::Error::raw(clap::error::ErrorKind::InvalidValue, format!("{e}\n")).with_cmd(cmd)
        })
    }

    fn possible_values(&self) -> Option<Box<dyn Iterator<Item = PossibleValue> + '_>> {
        Some(Box::new(
            Model::ALL.iter().map(|m| PossibleValue::new(m.name())),
        ))
    }
}

//! How a policy introduces itself to the tools: its name, one line about it, the
//! options it takes (typed, with defaults, bounds and help) and how to build it.
//!
//! A [`PolicyEntry`] is a `const` a policy's crate exports; the `schedkit` crate's
//! registry and command line take a list of them, so that `run`, `sim`, `compare`
//! and `policies` know the policy and its options without any code of their own.
//!
//! ```
//! use schedkit_core::registry::{OptionKind, OptionValues, PolicyEntry, PolicyOption};
//! use schedkit_core::{Context, Decision, Policy, QueuedTask};
//! use std::collections::VecDeque;
//!
//! struct Simplest { queue: VecDeque<QueuedTask>, slice_ns: u64 }
//! impl Policy for Simplest {
//!     fn name(&self) -> &'static str { "simplest" }
//!     fn enqueue(&mut self, t: &QueuedTask, _: &mut Context<'_>) { self.queue.push_back(*t) }
//!     fn dispatch(&mut self, _: &mut Context<'_>) -> Option<Decision> {
//!         self.queue.pop_front().map(|t| Decision::new(&t, self.slice_ns))
//!     }
//!     fn nr_held(&self) -> usize { self.queue.len() }
//! }
//!
//! fn build(o: &OptionValues) -> Result<Box<dyn Policy>, String> {
//!     let slice_ns = o.u64("slice-us")? * 1000;
//!     Ok(Box::new(Simplest { queue: VecDeque::with_capacity(1024), slice_ns }))
//! }
//!
//! pub const SIMPLEST: PolicyEntry = PolicyEntry {
//!     name: "simplest",
//!     about: "every task in arrival order, on any CPU",
//!     options: &[PolicyOption {
//!         name: "slice-us",
//!         help: "time slice",
//!         kind: OptionKind::U64 { default: 5000, min: 50, max: 1_000_000, unit: "us" },
//!     }],
//!     build,
//! };
//!
//! let values = SIMPLEST.parse(&[("slice-us", Some("2000"))]).unwrap();
//! assert_eq!(values.u64("slice-us").unwrap(), 2000);
//! assert!(SIMPLEST.parse(&[("slice-us", Some("0"))]).is_err());
//! let policy = (SIMPLEST.build)(&values).unwrap();
//! assert_eq!(policy.name(), "simplest");
//! ```

use std::fmt;

use crate::Policy;

/// Longest slice any shipped option allows, in microseconds: 1 s, a tenth of the
/// sched_ext watchdog's timeout, so no slice can look like a stall.
pub const MAX_SLICE_US: u64 = 1_000_000;

/// A policy, as the registry and the command line know it.
#[derive(Clone, Copy)]
pub struct PolicyEntry {
    /// The name users type (`schedkit run NAME`); also the policy's
    /// [`Policy::name`], shown in `/sys/kernel/sched_ext/root/ops` as
    /// `schedkit_NAME`. Lower-case letters, digits and `_`.
    pub name: &'static str,
    /// One line: what it does and when to use it.
    pub about: &'static str,
    /// The options it takes, as `--NAME VALUE` (or `--NAME` for a flag).
    pub options: &'static [PolicyOption],
    /// Builds the policy from parsed options; an `Err` is one sentence for the user
    /// (options that are fine alone but not together, say).
    pub build: fn(&OptionValues) -> Result<Box<dyn Policy>, String>,
}

impl fmt::Debug for PolicyEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PolicyEntry")
            .field("name", &self.name)
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

/// One option of a policy.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PolicyOption {
    /// Its name without dashes (`slice-us` is given as `--slice-us`).
    pub name: &'static str,
    /// One line of help.
    pub help: &'static str,
    pub kind: OptionKind,
}

/// What an option takes, with its default and bounds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum OptionKind {
    /// Present or not; off by default.
    Flag,
    /// A whole number in `min..=max`, in `unit` (shown in help and errors).
    U64 {
        default: u64,
        min: u64,
        max: u64,
        unit: &'static str,
    },
    /// A number in `min..=max`, in `unit`.
    F64 {
        default: f64,
        min: f64,
        max: f64,
        unit: &'static str,
    },
}

/// A parsed option value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum OptionValue {
    Flag(bool),
    U64(u64),
    F64(f64),
}

impl fmt::Display for OptionValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OptionValue::Flag(b) => write!(f, "{b}"),
            OptionValue::U64(v) => write!(f, "{v}"),
            OptionValue::F64(v) => write!(f, "{v}"),
        }
    }
}

impl PolicyOption {
    /// The value it has when not given.
    pub fn default_value(&self) -> OptionValue {
        match self.kind {
            OptionKind::Flag => OptionValue::Flag(false),
            OptionKind::U64 { default, .. } => OptionValue::U64(default),
            OptionKind::F64 { default, .. } => OptionValue::F64(default),
        }
    }

    /// Whether it is a flag (takes no value).
    pub fn is_flag(&self) -> bool {
        matches!(self.kind, OptionKind::Flag)
    }

    /// `[default: 5000 us, 50..=1000000]`, for help texts.
    pub fn describe_default(&self) -> String {
        match self.kind {
            OptionKind::Flag => String::new(),
            OptionKind::U64 {
                default,
                min,
                max,
                unit,
            } => format!("[default: {default} {unit}; {min} to {max}]"),
            OptionKind::F64 {
                default,
                min,
                max,
                unit,
            } => format!("[default: {default} {unit}; {min} to {max}]"),
        }
    }

    /// Parses `text` as this option's value, or says in one sentence why not.
    pub fn parse(&self, text: Option<&str>) -> Result<OptionValue, String> {
        let name = self.name;
        match (self.kind, text) {
            (OptionKind::Flag, None) => Ok(OptionValue::Flag(true)),
            (OptionKind::Flag, Some(t)) => match t {
                "true" | "1" | "yes" | "on" => Ok(OptionValue::Flag(true)),
                "false" | "0" | "no" | "off" => Ok(OptionValue::Flag(false)),
                _ => Err(format!(
                    "--{name} is a flag: give it alone, or true or false, not {t:?}"
                )),
            },
            (_, None) => Err(format!("--{name} needs a value")),
            (OptionKind::U64 { min, max, unit, .. }, Some(t)) => {
                let v: u64 = t.trim().parse().map_err(|_| {
                    format!(
                        "--{name} takes a whole number of {unit} from {min} to {max}, not {t:?}"
                    )
                })?;
                if !(min..=max).contains(&v) {
                    return Err(format!(
                        "--{name} must be between {min} and {max} {unit}, got {v}"
                    ));
                }
                Ok(OptionValue::U64(v))
            }
            (OptionKind::F64 { min, max, unit, .. }, Some(t)) => {
                let v: f64 = t.trim().parse().map_err(|_| {
                    format!("--{name} takes a number of {unit} from {min} to {max}, not {t:?}")
                })?;
                if !(v.is_finite() && v >= min && v <= max) {
                    return Err(format!(
                        "--{name} must be between {min} and {max} {unit}, got {t}"
                    ));
                }
                Ok(OptionValue::F64(v))
            }
        }
    }
}

/// The options of one policy after parsing: every declared option has a value (its
/// default unless given).
#[derive(Debug, Clone, PartialEq)]
pub struct OptionValues {
    policy: &'static str,
    values: Vec<(&'static str, OptionValue, bool)>,
}

impl OptionValues {
    fn find(&self, name: &str) -> Result<&(&'static str, OptionValue, bool), String> {
        self.values
            .iter()
            .find(|(n, _, _)| *n == name)
            .ok_or_else(|| {
                format!(
                    "the policy `{}` asked for an option `--{name}` it does not declare",
                    self.policy
                )
            })
    }

    /// The value of a flag.
    pub fn flag(&self, name: &str) -> Result<bool, String> {
        match self.find(name)?.1 {
            OptionValue::Flag(b) => Ok(b),
            v => Err(format!("--{name} is not a flag (its value is {v})")),
        }
    }

    /// The value of a whole-number option.
    pub fn u64(&self, name: &str) -> Result<u64, String> {
        match self.find(name)?.1 {
            OptionValue::U64(v) => Ok(v),
            v => Err(format!("--{name} is not a whole number (its value is {v})")),
        }
    }

    /// The value of a number option.
    pub fn f64(&self, name: &str) -> Result<f64, String> {
        match self.find(name)?.1 {
            OptionValue::F64(v) => Ok(v),
            v => Err(format!("--{name} is not a number (its value is {v})")),
        }
    }

    /// Whether the user gave the option (rather than leaving its default).
    pub fn given(&self, name: &str) -> bool {
        self.find(name).map(|v| v.2).unwrap_or(false)
    }

    /// Every option with its value, in declaration order (for reports).
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, OptionValue)> + '_ {
        self.values.iter().map(|(n, v, _)| (*n, *v))
    }
}

impl PolicyEntry {
    /// The option called `name`, if this policy declares it.
    pub fn option(&self, name: &str) -> Option<&PolicyOption> {
        self.options.iter().find(|o| o.name == name)
    }

    /// Parses the options given as `(name, value)` pairs (value `None` for a flag
    /// given alone); options not given take their default. An option this policy
    /// does not declare, or a bad value, is refused with one sentence.
    pub fn parse(&self, given: &[(&str, Option<&str>)]) -> Result<OptionValues, String> {
        let mut values: Vec<_> = self
            .options
            .iter()
            .map(|o| (o.name, o.default_value(), false))
            .collect();
        for (name, text) in given {
            let Some(i) = self.options.iter().position(|o| o.name == *name) else {
                return Err(self.unknown_option(name));
            };
            values[i] = (self.options[i].name, self.options[i].parse(*text)?, true);
        }
        Ok(OptionValues {
            policy: self.name,
            values,
        })
    }

    fn unknown_option(&self, name: &str) -> String {
        if self.options.is_empty() {
            format!(
                "the policy `{}` takes no option --{name}: it has no options",
                self.name
            )
        } else {
            let names: Vec<String> = self
                .options
                .iter()
                .map(|o| format!("--{}", o.name))
                .collect();
            format!(
                "the policy `{}` takes no option --{name}: its options are {}",
                self.name,
                names.join(", ")
            )
        }
    }

    /// Builds the policy from `given` options (see [`PolicyEntry::parse`]).
    pub fn build_with(&self, given: &[(&str, Option<&str>)]) -> Result<Box<dyn Policy>, String> {
        (self.build)(&self.parse(given)?)
    }

    /// Builds the policy with every option at its default.
    pub fn build_default(&self) -> Result<Box<dyn Policy>, String> {
        self.build_with(&[])
    }

    /// Checks what the tools rely on: a name usable in sysfs and on the command line
    /// (`[a-z][a-z0-9_]*`, at most 32 characters), option names of
    /// `[a-z][a-z0-9-]*`, unique, defaults within bounds.
    pub fn validate(&self) -> Result<(), String> {
        let name_ok = |n: &str, extra: char| {
            n.starts_with(|c: char| c.is_ascii_lowercase())
                && n.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == extra)
        };
        if !name_ok(self.name, '_') || self.name.len() > 32 {
            return Err(format!(
                "policy name {:?} must be 1 to 32 characters of a-z, 0-9 and _, starting with a letter",
                self.name
            ));
        }
        for (i, o) in self.options.iter().enumerate() {
            if !name_ok(o.name, '-') {
                return Err(format!(
                    "option name {:?} of policy `{}` must be a-z, 0-9 and -, starting with a letter",
                    o.name, self.name
                ));
            }
            if self.options[..i].iter().any(|p| p.name == o.name) {
                return Err(format!(
                    "policy `{}` declares --{} twice",
                    self.name, o.name
                ));
            }
            let in_bounds = match o.kind {
                OptionKind::Flag => true,
                OptionKind::U64 {
                    default, min, max, ..
                } => min <= default && default <= max,
                OptionKind::F64 {
                    default, min, max, ..
                } => default.is_finite() && min <= default && default <= max,
            };
            if !in_bounds {
                return Err(format!(
                    "the default of --{} of policy `{}` is outside its bounds",
                    o.name, self.name
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Context, Decision, QueuedTask};

    struct Nop(u64);
    impl Policy for Nop {
        fn name(&self) -> &'static str {
            "nop"
        }
        fn enqueue(&mut self, _: &QueuedTask, _: &mut Context<'_>) {}
        fn dispatch(&mut self, _: &mut Context<'_>) -> Option<Decision> {
            None
        }
        fn nr_held(&self) -> usize {
            self.0 as usize
        }
    }

    fn build(o: &OptionValues) -> Result<Box<dyn Policy>, String> {
        let n = o.u64("n")?;
        if o.flag("odd")? && n % 2 == 0 {
            return Err("--odd needs an odd --n".into());
        }
        Ok(Box::new(Nop(n)))
    }

    const NOP: PolicyEntry = PolicyEntry {
        name: "nop",
        about: "does nothing",
        options: &[
            PolicyOption {
                name: "n",
                help: "a count",
                kind: OptionKind::U64 {
                    default: 3,
                    min: 1,
                    max: 10,
                    unit: "tasks",
                },
            },
            PolicyOption {
                name: "odd",
                help: "n must be odd",
                kind: OptionKind::Flag,
            },
            PolicyOption {
                name: "ratio",
                help: "a ratio",
                kind: OptionKind::F64 {
                    default: 0.5,
                    min: 0.0,
                    max: 1.0,
                    unit: "",
                },
            },
        ],
        build,
    };

    #[test]
    fn defaults_apply_when_nothing_is_given() {
        let v = NOP.parse(&[]).unwrap();
        assert_eq!(v.u64("n"), Ok(3));
        assert_eq!(v.flag("odd"), Ok(false));
        assert_eq!(v.f64("ratio"), Ok(0.5));
        assert!(!v.given("n"));
        assert_eq!(NOP.build_default().unwrap().nr_held(), 3);
    }

    #[test]
    fn given_values_are_parsed_and_bounded() {
        let v = NOP
            .parse(&[("n", Some("7")), ("odd", None), ("ratio", Some("0.25"))])
            .unwrap();
        assert_eq!(v.u64("n"), Ok(7));
        assert_eq!(v.flag("odd"), Ok(true));
        assert_eq!(v.f64("ratio"), Ok(0.25));
        assert!(v.given("n"));
        for bad in ["0", "11", "-1", "x", "1e3", ""] {
            let e = NOP.parse(&[("n", Some(bad))]).unwrap_err();
            assert!(e.starts_with("--n "), "{e}");
        }
        for bad in ["NaN", "inf", "1.5", "-0.1"] {
            assert!(NOP.parse(&[("ratio", Some(bad))]).is_err(), "{bad}");
        }
        assert!(NOP.parse(&[("n", None)]).is_err());
    }

    #[test]
    fn an_undeclared_option_is_refused_with_the_list() {
        let e = NOP.parse(&[("slice-us", Some("5"))]).unwrap_err();
        assert_eq!(
            e,
            "the policy `nop` takes no option --slice-us: its options are --n, --odd, --ratio"
        );
    }

    #[test]
    fn build_errors_reach_the_user() {
        let e = NOP
            .build_with(&[("n", Some("4")), ("odd", None)])
            .err()
            .unwrap();
        assert_eq!(e, "--odd needs an odd --n");
        let v = NOP.parse(&[]).unwrap();
        assert!(v.u64("odd").is_err());
        assert!(v.u64("nope").unwrap_err().contains("does not declare"));
    }

    #[test]
    fn validate_catches_bad_names_and_defaults() {
        assert_eq!(NOP.validate(), Ok(()));
        let bad_name = PolicyEntry {
            name: "My-Policy",
            ..NOP
        };
        assert!(bad_name.validate().is_err());
        const TWICE: &[PolicyOption] = &[
            PolicyOption {
                name: "x",
                help: "",
                kind: OptionKind::Flag,
            },
            PolicyOption {
                name: "x",
                help: "",
                kind: OptionKind::Flag,
            },
        ];
        assert!(PolicyEntry {
            options: TWICE,
            ..NOP
        }
        .validate()
        .unwrap_err()
        .contains("twice"));
        const OUT: &[PolicyOption] = &[PolicyOption {
            name: "x",
            help: "",
            kind: OptionKind::U64 {
                default: 0,
                min: 1,
                max: 2,
                unit: "",
            },
        }];
        assert!(PolicyEntry {
            options: OUT,
            ..NOP
        }
        .validate()
        .is_err());
    }
}

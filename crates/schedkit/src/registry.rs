//! The policy registry: every policy the tools can run, simulate and compare, by name.
//!
//! It is built from the [`PolicyEntry`] list a binary hands to [`crate::cli::main`]
//! (a user's own policies) followed by the shipped ones (`rustland`, `fifo`), plus the
//! simulator's model of the kernel's default scheduler, `eevdf`, which can be simulated
//! and compared but not attached.
//!
//! ```
//! use schedkit::registry::Registry;
//!
//! let reg = Registry::new(&[]).unwrap();
//! assert_eq!(reg.default_policy(), "rustland");
//! let fifo = reg.build("fifo", &[("slice-us", Some("2000"))]).unwrap();
//! assert_eq!(fifo.name(), "fifo");
//! assert!(reg.build("fifo", &[("slice-us", Some("0"))]).is_err());
//! assert!(reg.scheduler("eevdf", &[]).is_ok());
//! ```

use schedkit_core::registry::{PolicyEntry, PolicyOption};
use schedkit_core::Policy;
use schedkit_sim::{Scheduler, EEVDF_NAME};

/// One line about the EEVDF model, as `schedkit policies` shows it.
const EEVDF_ABOUT: &str =
    "the kernel's default scheduler (a model of it, in sim and compare; to run it, detach any sched_ext scheduler)";

/// A policy option given on the command line: its name and its value (`None` for a
/// flag given alone).
pub type Given<'a> = (&'a str, Option<&'a str>);

/// See the module documentation.
#[derive(Debug, Clone)]
pub struct Registry {
    entries: Vec<PolicyEntry>,
}

impl Registry {
    /// The user's `entries` first, then the shipped policies. Refuses an entry that
    /// does not validate (see [`PolicyEntry::validate`]) or a name used twice (or
    /// `eevdf`), in one sentence.
    pub fn new(entries: &[PolicyEntry]) -> Result<Registry, String> {
        let mut all: Vec<PolicyEntry> = Vec::new();
        for e in entries.iter().chain(schedkit_policies::ENTRIES) {
            e.validate()?;
            if e.name == EEVDF_NAME || all.iter().any(|a| a.name == e.name) {
                return Err(format!(
                    "two policies are called `{}`: give yours another name",
                    e.name
                ));
            }
            all.push(*e);
        }
        Ok(Registry { entries: all })
    }

    /// Every policy, in the order `schedkit policies` lists them.
    pub fn entries(&self) -> &[PolicyEntry] {
        &self.entries
    }

    /// The policy `schedkit run` runs when none is named: the first one.
    pub fn default_policy(&self) -> &'static str {
        self.entries.first().map_or("rustland", |e| e.name)
    }

    /// The entry called `name`.
    pub fn get(&self, name: &str) -> Option<&PolicyEntry> {
        self.entries.iter().find(|e| e.name == name)
    }

    /// The entry called `name`, or the sentence that lists the choices.
    pub fn entry(&self, name: &str) -> Result<&PolicyEntry, String> {
        self.get(name).ok_or_else(|| {
            if name == EEVDF_NAME {
                format!(
                    "`{EEVDF_NAME}` is the kernel's own scheduler, not a schedkit policy: it runs whenever no sched_ext scheduler is attached"
                )
            } else {
                format!(
                    "unknown policy '{name}': choose one of {} (see schedkit policies)",
                    self.names().join(", ")
                )
            }
        })
    }

    fn names(&self) -> Vec<&'static str> {
        self.entries.iter().map(|e| e.name).collect()
    }

    /// Builds the policy `name` with the `given` options.
    pub fn build(&self, name: &str, given: &[Given<'_>]) -> Result<Box<dyn Policy>, String> {
        self.entry(name)?.build_with(given)
    }

    /// What simulates `name`: a policy built with the `given` options, or the EEVDF
    /// model (which takes none).
    pub fn scheduler(&self, name: &str, given: &[Given<'_>]) -> Result<Scheduler, String> {
        if name == EEVDF_NAME && self.get(name).is_none() {
            if let Some((opt, _)) = given.first() {
                return Err(format!("`{EEVDF_NAME}` takes no option --{opt}"));
            }
            return Ok(Scheduler::Eevdf);
        }
        if self.get(name).is_none() {
            return Err(format!(
                "unknown policy '{name}': choose one of {}, or {EEVDF_NAME} (see schedkit policies)",
                self.names().join(", ")
            ));
        }
        self.build(name, given).map(Scheduler::Policy)
    }

    /// Of the `given` options, those the scheduler `name` declares: for `compare`,
    /// where an option applies to every compared policy that has it.
    pub fn options_for<'a>(&self, name: &str, given: &[Given<'a>]) -> Vec<Given<'a>> {
        let Some(e) = self.get(name) else {
            return Vec::new();
        };
        given
            .iter()
            .filter(|(n, _)| e.option(n).is_some())
            .copied()
            .collect()
    }

    /// Every option name any policy declares, once, with the policies that declare it
    /// (for the command line, which accepts each once).
    pub fn all_options(&self) -> Vec<(PolicyOption, Vec<&'static str>)> {
        let mut out: Vec<(PolicyOption, Vec<&'static str>)> = Vec::new();
        for e in &self.entries {
            for o in e.options {
                match out.iter_mut().find(|(p, _)| p.name == o.name) {
                    Some((_, owners)) => owners.push(e.name),
                    None => out.push((*o, vec![e.name])),
                }
            }
        }
        out
    }

    /// The help of option `name` across the policies that declare it.
    pub fn option_help(&self, name: &str) -> String {
        let parts: Vec<String> = self
            .entries
            .iter()
            .filter_map(|e| e.option(name).map(|o| (e.name, o)))
            .map(|(p, o)| {
                let d = o.describe_default();
                if d.is_empty() {
                    format!("{p}: {}", o.help)
                } else {
                    format!("{p}: {} {d}", o.help)
                }
            })
            .collect();
        parts.join("; ")
    }

    /// `schedkit policies`: one line per policy, then its options, then `eevdf`.
    pub fn render_list(&self) -> String {
        let width = self
            .entries
            .iter()
            .map(|e| e.name.len())
            .chain([EEVDF_NAME.len()])
            .max()
            .unwrap_or(0);
        let mut out = String::new();
        for e in &self.entries {
            out.push_str(&format!("{:width$}  {}\n", e.name, e.about));
            for o in e.options {
                let flag = if o.is_flag() {
                    format!("--{}", o.name)
                } else {
                    format!("--{} N", o.name)
                };
                let d = o.describe_default();
                out.push_str(&format!(
                    "{:width$}    {flag:<20} {}{}{d}\n",
                    "",
                    o.help,
                    if d.is_empty() { "" } else { " " }
                ));
            }
        }
        out.push_str(&format!("{EEVDF_NAME:width$}  {EEVDF_ABOUT}\n"));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use schedkit_core::registry::{OptionKind, OptionValues};
    use schedkit_core::{Context, Decision, QueuedTask};

    struct Mine;
    impl Policy for Mine {
        fn name(&self) -> &'static str {
            "mine"
        }
        fn enqueue(&mut self, _: &QueuedTask, _: &mut Context<'_>) {}
        fn dispatch(&mut self, _: &mut Context<'_>) -> Option<Decision> {
            None
        }
        fn nr_held(&self) -> usize {
            0
        }
    }
    fn build(_: &OptionValues) -> Result<Box<dyn Policy>, String> {
        Ok(Box::new(Mine))
    }
    const MINE: PolicyEntry = PolicyEntry {
        name: "mine",
        about: "mine",
        options: &[PolicyOption {
            name: "slice-us",
            help: "my slice",
            kind: OptionKind::U64 {
                default: 100,
                min: 50,
                max: 200,
                unit: "us",
            },
        }],
        build,
    };

    #[test]
    fn every_entry_builds_with_its_defaults() {
        let reg = Registry::new(&[MINE]).unwrap();
        assert_eq!(reg.default_policy(), "mine");
        for e in reg.entries() {
            assert_eq!(reg.build(e.name, &[]).unwrap().name(), e.name);
        }
    }

    #[test]
    fn unknown_and_duplicate_names_are_refused_in_one_sentence() {
        let reg = Registry::new(&[]).unwrap();
        let e = reg.build("nope", &[]).err().unwrap();
        assert_eq!(
            e,
            "unknown policy 'nope': choose one of rustland, fifo (see schedkit policies)"
        );
        assert!(reg
            .build("eevdf", &[])
            .err()
            .unwrap()
            .contains("kernel's own"));
        let fifo_again = PolicyEntry {
            name: "fifo",
            ..MINE
        };
        assert!(Registry::new(&[fifo_again]).unwrap_err().contains("`fifo`"));
    }

    #[test]
    fn eevdf_simulates_but_takes_no_option() {
        let reg = Registry::new(&[]).unwrap();
        assert!(matches!(reg.scheduler("eevdf", &[]), Ok(Scheduler::Eevdf)));
        assert!(matches!(
            reg.scheduler("fifo", &[]),
            Ok(Scheduler::Policy(_))
        ));
        let e = reg
            .scheduler("eevdf", &[("slice-us", Some("5"))])
            .err()
            .unwrap();
        assert_eq!(e, "`eevdf` takes no option --slice-us");
    }

    #[test]
    fn shared_option_names_are_listed_once_with_their_policies() {
        let reg = Registry::new(&[MINE]).unwrap();
        let all = reg.all_options();
        let slice = all.iter().find(|(o, _)| o.name == "slice-us").unwrap();
        assert_eq!(slice.1, ["mine", "rustland", "fifo"]);
        assert_eq!(all.iter().filter(|(o, _)| o.name == "slice-us").count(), 1);
        let help = reg.option_help("slice-us");
        assert!(
            help.starts_with("mine: my slice [default: 100 us; 50 to 200]"),
            "{help}"
        );
        let given = [("slice-us", Some("60")), ("percpu-local", None)];
        assert_eq!(reg.options_for("fifo", &given), [("slice-us", Some("60"))]);
        assert_eq!(reg.options_for("rustland", &given).len(), 2);
    }

    #[test]
    fn the_list_shows_every_policy_with_its_options() {
        let list = Registry::new(&[]).unwrap().render_list();
        assert!(list.lines().any(|l| l.starts_with("rustland ")), "{list}");
        assert!(list.lines().any(|l| l.starts_with("fifo ")), "{list}");
        assert!(list.lines().any(|l| l.starts_with("eevdf ")), "{list}");
        assert!(list.contains("--slice-us-min N"), "{list}");
        assert!(list.contains("--percpu-local"), "{list}");
        assert!(
            list.contains("[default: 20000 us; 50 to 1000000]"),
            "{list}"
        );
    }
}

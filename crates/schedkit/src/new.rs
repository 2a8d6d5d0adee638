//! `schedkit new PATH [--name NAME]`: a crate with a policy of its own, ready to test,
//! simulate, compare and run. The files come from `templates/policy/`, with the
//! policy's name and the path of the schedkit checkout filled in.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context as _};

#[derive(clap::Args)]
pub struct NewArgs {
    /// Directory to create (it may exist if it is empty).
    path: PathBuf,
    /// The policy's and the binary's name: a-z, 0-9 and _, starting with a letter
    /// [default: the directory's name].
    #[arg(long)]
    name: Option<String>,
    /// The schedkit checkout to depend on [default: the one this program was built
    /// from].
    #[arg(long, value_name = "DIR")]
    schedkit_path: Option<PathBuf>,
}

/// The checkout this binary was built from.
fn built_from() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The template files: path in the new crate, text.
const TEMPLATE: &[(&str, &str)] = &[
    (
        "Cargo.toml",
        include_str!("../templates/policy/Cargo.toml.in"),
    ),
    (
        "README.md",
        include_str!("../templates/policy/README.md.in"),
    ),
    (
        "src/main.rs",
        include_str!("../templates/policy/src/main.rs.in"),
    ),
    (
        "src/lib.rs",
        include_str!("../templates/policy/src/lib.rs.in"),
    ),
    (
        "src/policy.rs",
        include_str!("../templates/policy/src/policy.rs.in"),
    ),
    (
        "tests/sim.rs",
        include_str!("../templates/policy/tests/sim.rs.in"),
    ),
    (
        "scenarios/small.toml",
        include_str!("../templates/policy/scenarios/small.toml"),
    ),
    (".gitignore", "/target\n"),
];

/// Checks a policy name: what sysfs (`schedkit_NAME`), Cargo and Rust all accept.
pub fn check_name(name: &str) -> Result<(), String> {
    let ok = name.len() <= 32
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    let reserved = [
        "eevdf", "fifo", "rustland", "schedkit", "test", "core", "std",
    ];
    if !ok {
        return Err(format!(
            "`{name}` cannot name a policy: use 1 to 32 of a-z, 0-9 and _, starting with a letter (pass --name NAME)"
        ));
    }
    if reserved.contains(&name) {
        return Err(format!(
            "`{name}` is taken (a shipped policy or a crate the new one uses): pass --name with another name"
        ));
    }
    Ok(())
}

/// `my_policy` -> `MyPolicy`, the policy's type name.
fn type_name(name: &str) -> String {
    name.split('_')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let mut c = p.chars();
            c.next()
                .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                .unwrap_or_default()
        })
        .collect()
}

/// The file texts of a new crate `name` at `crate_path` depending on `schedkit_path`.
pub fn render(name: &str, crate_path: &Path, schedkit_path: &Path) -> Vec<(&'static str, String)> {
    let ty = type_name(name);
    TEMPLATE
        .iter()
        .map(|(path, text)| {
            let text = text
                .replace("{{name}}", name)
                .replace("{{Type}}", &ty)
                .replace("{{schedkit_path}}", &schedkit_path.to_string_lossy())
                .replace("{{crate_path}}", &crate_path.to_string_lossy());
            (*path, text)
        })
        .collect()
}

pub fn new(args: NewArgs) -> anyhow::Result<ExitCode> {
    let path = &args.path;
    if path.exists() {
        let empty = path.is_dir()
            && std::fs::read_dir(path)
                .with_context(|| format!("cannot read {}", path.display()))?
                .next()
                .is_none();
        if !empty {
            bail!(
                "{} exists and is not an empty directory: choose a new path",
                path.display()
            );
        }
    }
    let name = match &args.name {
        Some(n) => n.clone(),
        None => path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
    };
    check_name(&name).map_err(anyhow::Error::msg)?;
    let schedkit = args.schedkit_path.clone().unwrap_or_else(built_from);
    let schedkit = schedkit
        .canonicalize()
        .ok()
        .filter(|p| p.join("crates/schedkit-core/Cargo.toml").is_file());
    let Some(schedkit) = schedkit else {
        bail!(
            "no schedkit checkout at {}: pass --schedkit-path DIR with the checkout to build against",
            args.schedkit_path
                .clone()
                .unwrap_or_else(built_from)
                .display()
        );
    };
    std::fs::create_dir_all(path).with_context(|| format!("cannot create {}", path.display()))?;
    let crate_path = path.canonicalize()?;
    for (file, text) in render(&name, &crate_path, &schedkit) {
        let dest = crate_path.join(file);
        if let Some(dir) = dest.parent() {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
        }
        std::fs::write(&dest, text).with_context(|| format!("cannot write {}", dest.display()))?;
    }
    // The checkout's lock file: the new crate builds with the very versions schedkit
    // was tested with, and without asking the registry for newer ones.
    let lock = schedkit.join("Cargo.lock");
    if lock.is_file() {
        std::fs::copy(&lock, crate_path.join("Cargo.lock"))
            .with_context(|| format!("cannot copy {}", lock.display()))?;
    }
    println!(
        "created the policy `{name}` in {}\n\n    cd {}\n    cargo test\n    cargo build --release\n    target/release/{name} sim scenarios/small.toml --policy {name}\n\nthen edit src/policy.rs; README.md says how to compare it with the kernel's scheduler and run it",
        crate_path.display(),
        path.display()
    );
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked() {
        assert!(check_name("mypol").is_ok());
        assert!(check_name("my_pol2").is_ok());
        for bad in ["", "My", "my-pol", "1abc", "fifo", "a".repeat(33).as_str()] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn type_names_are_camel_case() {
        assert_eq!(type_name("my_pol"), "MyPol");
        assert_eq!(type_name("rr"), "Rr");
    }

    #[test]
    fn every_placeholder_is_filled() {
        let files = render("mypol", Path::new("/c/mypol"), Path::new("/s"));
        assert_eq!(files.len(), TEMPLATE.len());
        for (path, text) in &files {
            assert!(!text.contains("{{"), "{path} keeps a placeholder");
        }
        let cargo = &files.iter().find(|f| f.0 == "Cargo.toml").unwrap().1;
        assert!(cargo.contains("name = \"mypol\""));
        assert!(cargo.contains("path = \"/s/crates/schedkit-core\""));
        let policy = &files.iter().find(|f| f.0 == "src/policy.rs").unwrap().1;
        assert!(policy.contains("pub struct Mypol {"));
    }

    #[test]
    fn a_non_empty_path_is_refused() {
        let dir = std::env::temp_dir().join(format!("schedkit-new-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("x"), "").unwrap();
        let err = new(NewArgs {
            path: dir.clone(),
            name: Some("mypol".into()),
            schedkit_path: None,
        })
        .unwrap_err();
        assert!(
            err.to_string().contains("is not an empty directory"),
            "{err}"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}

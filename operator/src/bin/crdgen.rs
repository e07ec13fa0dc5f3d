//! Prints the `BleepStoreCluster` CRD as YAML, or with `--write ROOT` writes it
//! to `ROOT/crds/` and `ROOT/charts/bleepstore-operator/crds/`.

use std::path::PathBuf;

fn main() -> anyhow::Result<()> {
    let yaml = bleepstore_operator::crd_yaml()?;
    let mut args = std::env::args().skip(1);
    match args.next().as_deref() {
        None => print!("{yaml}"),
        Some("--write") => {
            let root = PathBuf::from(args.next().unwrap_or_else(|| ".".into()));
            for path in bleepstore_operator::CRD_PATHS {
                let path = root.join(path);
                std::fs::create_dir_all(path.parent().expect("has a parent"))?;
                std::fs::write(&path, &yaml)?;
                eprintln!("wrote {}", path.display());
            }
        }
        Some(other) => anyhow::bail!("usage: crdgen [--write ROOT] (unknown argument {other})"),
    }
    Ok(())
}

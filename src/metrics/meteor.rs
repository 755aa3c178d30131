//! METEOR 1.5 (Denkowski & Lavie 2014) through coco-caption's `meteor-1.5.jar`, spoken to the way
//! pycocoevalcap does: `java -jar -Xmx2G meteor-1.5.jar - - -stdio -l en -norm`, one
//! `SCORE ||| refs ||| hyp` line per image for its statistics, then one `EVAL` line with all of them,
//! answered by the per-image scores and the corpus score. The jar needs its `data/` folder beside it.
//! Without a jar named by the user, coco-caption's own is fetched from PyPI (pycocoevalcap 1.2).

use super::Sample;
use anyhow::{bail, Context, Result};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

pub const JAR_VARIABLE: &str = "CAPTIONER_METEOR_JAR";
const PACKAGE: &str = "pycocoevalcap==1.2";
const FOLDER_IN_WHEEL: &str = "pycocoevalcap/meteor/";

/// The jar named by the flag, else by `$CAPTIONER_METEOR_JAR`, else coco-caption's, fetched into
/// the cache on first use. The error says why METEOR cannot run here.
pub fn locate(flag: Option<&Path>) -> Result<PathBuf> {
    if let Some(jar) = flag
        .map(Path::to_owned)
        .or_else(|| std::env::var_os(JAR_VARIABLE).map(PathBuf::from))
    {
        return Ok(jar);
    }
    let java = Command::new("java")
        .arg("-version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    if !java.is_ok_and(|s| s.success()) {
        bail!("METEOR needs Java, and `java` is not on PATH (install a Java runtime, e.g. `apt install default-jre-headless`)");
    }
    fetched_jar()
}

/// The files of pycocoevalcap 1.2's METEOR that the jar needs, with their sha256: the jar is a
/// program that runs, so only these bytes are written and run.
const FILES: [(&str, &str); 2] = [
    (
        "meteor-1.5.jar",
        "1e57b4c72c0830ebe68558f1c799a624e96cbc1b6045c9f6330e26dcff6eafc2",
    ),
    (
        "data/paraphrase-en.gz",
        "c147ac7d2c91f2fbb3ad31e4b352235061eb83145e0434daf217ee9ca5975f48",
    ),
];

/// coco-caption's meteor-1.5.jar with its data/ folder, from the PyPI package pycocoevalcap, each
/// file checked against its sha256 when fetched; the jar again before each use.
fn fetched_jar() -> Result<PathBuf> {
    let folder = crate::fetch::cache_dir()
        .join("pycocoevalcap")
        .join(FOLDER_IN_WHEEL);
    let jar = folder.join(FILES[0].0);
    if folder.join(FILES[1].0).is_file() {
        if let Ok(bytes) = std::fs::read(&jar) {
            if crate::fetch::sha256_hex(&bytes) == FILES[0].1 {
                return Ok(jar);
            }
        }
    }
    let manual = format!(
        "Download the PyPI package {PACKAGE} elsewhere and pass its pycocoevalcap/meteor/meteor-1.5.jar \
         (with the data/ folder beside it) with --meteor-jar"
    );
    let files = crate::fetch::with_wheel(
        PACKAGE,
        "METEOR 1.5 (coco-caption's jar, 100 MB)",
        &manual,
        |archive, wheel| {
            FILES
                .iter()
                .map(|(name, sha256)| {
                    let member = format!("{FOLDER_IN_WHEEL}{name}");
                    let bytes = crate::fetch::read_member(archive, wheel, &member)?;
                    crate::fetch::check_sha256(&bytes, &format!("{member} in {PACKAGE}"), sha256)?;
                    Ok((*name, bytes))
                })
                .collect::<Result<Vec<_>>>()
        },
    )?;
    for (name, bytes) in files {
        let path = folder.join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("cannot create {}", parent.display()))?;
        }
        crate::fsio::write_atomic(&path, &bytes)?;
    }
    Ok(jar)
}

/// Corpus METEOR and the per-image scores; an error says why METEOR is unavailable.
pub fn meteor(samples: &[Sample], jar: &Path) -> Result<(f64, Vec<f64>)> {
    meteor_with(samples, jar, &[])
}

/// `meteor` with more of the jar's options (`-m exact`: its matchers; `-p "a b g d"`: its
/// parameters).
pub fn meteor_with(samples: &[Sample], jar: &Path, options: &[&str]) -> Result<(f64, Vec<f64>)> {
    if !jar.is_file() {
        bail!(
            "{} does not exist (pycocoevalcap ships meteor-1.5.jar in pycocoevalcap/meteor/)",
            jar.display()
        );
    }
    let mut child = Command::new("java")
        .args(["-jar", "-Xmx2G"])
        .arg(jar)
        .args(["-", "-", "-stdio", "-l", "en", "-norm"])
        .args(options)
        .current_dir(jar.parent().unwrap_or(Path::new(".")))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .context("cannot run java (METEOR needs a Java runtime)")?;
    let mut stdin = child.stdin.take().context("no stdin to java")?;
    let mut stdout = BufReader::new(child.stdout.take().context("no stdout from java")?);
    let mut read_line = || -> Result<String> {
        let mut line = String::new();
        if stdout.read_line(&mut line)? == 0 {
            bail!(
                "METEOR stopped answering (is {} the METEOR 1.5 jar with its data/ folder?)",
                jar.display()
            );
        }
        Ok(line.trim().to_owned())
    };
    let mut eval = String::from("EVAL");
    for sample in samples {
        let hypothesis = sample.candidate.replace("|||", "").replace("  ", " ");
        writeln!(
            stdin,
            "SCORE ||| {} ||| {hypothesis}",
            sample.references.join(" ||| ")
        )?;
        stdin.flush()?;
        eval.push_str(" ||| ");
        eval.push_str(&read_line()?);
    }
    writeln!(stdin, "{eval}")?;
    stdin.flush()?;
    let mut scores = Vec::with_capacity(samples.len());
    for _ in samples {
        scores.push(
            read_line()?
                .parse::<f64>()
                .context("METEOR answered with a non-number")?,
        );
    }
    let corpus = read_line()?
        .parse::<f64>()
        .context("METEOR answered with a non-number")?;
    drop(stdin);
    let _ = child.wait();
    Ok((corpus, scores))
}

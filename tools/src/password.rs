//! Where passwords come from: a file, a shell command, or the terminal.
//!
//! A password never comes from a pipe on stdin by accident: without a file
//! or command, stdin must be a terminal, else the command fails with a
//! message naming the options.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};

/// A source of one password.
#[derive(Clone, Debug)]
pub enum PasswordSource {
    /// Read from this file.
    File(PathBuf),
    /// The stdout of `sh -c COMMAND`.
    Command(String),
    /// Ask on the terminal.
    Prompt,
}

/// Removes the line ending a file or command adds after the password.
fn strip_newline(mut s: String) -> String {
    while s.ends_with('\n') || s.ends_with('\r') {
        s.pop();
    }
    s
}

fn nonempty(p: String, from: &str) -> Result<Vec<u8>> {
    if p.is_empty() {
        bail!("empty password from {from}");
    }
    Ok(p.into_bytes())
}

fn from_file(path: &PathBuf) -> Result<Vec<u8>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading password file {}", path.display()))?;
    nonempty(
        strip_newline(text),
        &format!("password file {}", path.display()),
    )
}

fn from_command(cmd: &str) -> Result<Vec<u8>> {
    // stderr stays on the terminal so the command can prompt or complain.
    let out = Command::new("sh")
        .arg("-c")
        .arg(cmd)
        .stdin(Stdio::inherit())
        .stderr(Stdio::inherit())
        .output()
        .with_context(|| format!("running password command {cmd:?}"))?;
    if !out.status.success() {
        bail!("password command {cmd:?} failed: {}", out.status);
    }
    let text = String::from_utf8(out.stdout)
        .with_context(|| format!("password command {cmd:?} printed invalid UTF-8"))?;
    nonempty(strip_newline(text), "password command")
}

fn prompt(question: &str) -> Result<String> {
    if !std::io::stdin().is_terminal() {
        bail!(
            "no password given and stdin is not a terminal: use --password-file, \
             --password-command, VAULTFS_PASSWORD_FILE or VAULTFS_PASSWORD_COMMAND"
        );
    }
    rpassword::prompt_password(question).context("reading password from the terminal")
}

impl PasswordSource {
    /// The password of an existing repository or key.
    pub fn read(&self, question: &str) -> Result<Vec<u8>> {
        match self {
            PasswordSource::File(p) => from_file(p),
            PasswordSource::Command(c) => from_command(c),
            PasswordSource::Prompt => nonempty(prompt(question)?, "the terminal"),
        }
    }

    /// A new password: on the terminal it is asked for twice and must match.
    pub fn read_new(&self, question: &str) -> Result<Vec<u8>> {
        match self {
            PasswordSource::Prompt => {
                let first = nonempty(prompt(question)?, "the terminal")?;
                let second = prompt("enter password again: ")?;
                if first != second.as_bytes() {
                    bail!("passwords do not match");
                }
                Ok(first)
            }
            other => other.read(question),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn newline_is_stripped_but_spaces_kept() {
        assert_eq!(strip_newline("pw\n".into()), "pw");
        assert_eq!(strip_newline("pw\r\n".into()), "pw");
        assert_eq!(strip_newline(" pw \n".into()), " pw ");
    }

    #[test]
    fn command_output_and_failure() {
        let p = PasswordSource::Command("printf 'secret\\n'".into());
        assert_eq!(p.read("").expect("command"), b"secret");
        let p = PasswordSource::Command("exit 3".into());
        assert!(p.read("").is_err());
        let p = PasswordSource::Command("true".into());
        assert!(p.read("").is_err(), "empty password");
    }
}

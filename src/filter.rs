//! Include and exclude filters for backup and restore: globs (`*`, `?`,
//! `[...]`, `**`) and regular expressions, matched against slash-separated
//! paths.
//!
//! A glob that starts with `/` is anchored at the root; any other glob
//! matches at any depth (`*.tmp` matches `/a/b/c.tmp`, `cache/*` matches
//! `/home/u/cache/x`), as restic's `--exclude` does. `*` does not cross a
//! `/`; `**` does. A match on a directory applies to everything below it.
//! Regexes are searched in the whole path (anchor them with `^`/`$`).

use globset::{GlobBuilder, GlobSet, GlobSetBuilder};
use regex::RegexSet;

use crate::error::{Error, ErrorKind, Result};

/// One side of a filter: a set of globs plus a set of regexes.
#[derive(Clone, Debug)]
pub struct Matcher {
    globs: GlobSet,
    regexes: RegexSet,
    empty: bool,
}

impl Matcher {
    /// Compiles `globs` and `regexes`; a bad pattern is an error naming it.
    pub fn new(globs: &[String], regexes: &[String]) -> Result<Matcher> {
        let mut b = GlobSetBuilder::new();
        for g in globs {
            let g = g.trim_end_matches('/');
            let anchored = if g.starts_with('/') {
                g.to_owned()
            } else {
                format!("**/{g}")
            };
            for pat in [anchored.clone(), format!("{anchored}/**")] {
                let glob = GlobBuilder::new(&pat)
                    .literal_separator(true)
                    .backslash_escape(true)
                    .build()
                    .map_err(|e| {
                        Error::new(ErrorKind::InvalidInput, format!("invalid glob {g:?}: {e}"))
                    })?;
                b.add(glob);
            }
        }
        let globs_set = b
            .build()
            .map_err(|e| Error::new(ErrorKind::InvalidInput, format!("invalid globs: {e}")))?;
        let regexes_set = RegexSet::new(regexes)
            .map_err(|e| Error::new(ErrorKind::InvalidInput, format!("invalid regex: {e}")))?;
        Ok(Matcher {
            globs: globs_set,
            regexes: regexes_set,
            empty: globs.is_empty() && regexes.is_empty(),
        })
    }

    /// True if no pattern was given.
    pub fn is_empty(&self) -> bool {
        self.empty
    }

    /// Does `path` (absolute, `/`-separated) match a pattern?
    pub fn matches(&self, path: &str) -> bool {
        !self.empty && (self.globs.is_match(path) || self.regexes.is_match(path))
    }
}

/// Include and exclude rules together.
#[derive(Clone, Debug)]
pub struct Filter {
    include: Matcher,
    exclude: Matcher,
}

impl Filter {
    /// A filter; empty includes mean "everything".
    pub fn new(include: Matcher, exclude: Matcher) -> Filter {
        Filter { include, exclude }
    }

    /// A filter that passes everything.
    pub fn all() -> Filter {
        let none = Matcher {
            globs: GlobSet::empty(),
            regexes: RegexSet::empty(),
            empty: true,
        };
        Filter {
            include: none.clone(),
            exclude: none,
        }
    }

    /// Is the path excluded (it, or a directory above it, matches an exclude)?
    pub fn excluded(&self, path: &str) -> bool {
        self.exclude.matches(path)
    }

    /// Are there include rules?
    pub fn has_includes(&self) -> bool {
        !self.include.is_empty()
    }

    /// Is the path selected by the include rules (always, without includes)?
    pub fn included(&self, path: &str) -> bool {
        self.include.is_empty() || self.include.matches(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(globs: &[&str], re: &[&str]) -> Matcher {
        let g: Vec<String> = globs.iter().map(|s| s.to_string()).collect();
        let r: Vec<String> = re.iter().map(|s| s.to_string()).collect();
        Matcher::new(&g, &r).expect("compile")
    }

    #[test]
    fn glob_semantics() {
        let x = m(&["*.tmp"], &[]);
        assert!(x.matches("/a/b/c.tmp"));
        assert!(x.matches("/c.tmp"));
        assert!(!x.matches("/a/b/c.tmpx"));
        let x = m(&["/home/*/cache"], &[]);
        assert!(x.matches("/home/u/cache"));
        assert!(x.matches("/home/u/cache/deep/file"), "subtree of a match");
        assert!(!x.matches("/x/home/u/cache"));
        assert!(!x.matches("/home/u/v/cache"), "* does not cross /");
        let x = m(&["/srv/**/*.log"], &[]);
        assert!(x.matches("/srv/a/b/c.log") && x.matches("/srv/c.log"));
        let x = m(&["node_modules/"], &[]);
        assert!(x.matches("/p/node_modules/x/y.js"));
        let x = m(&[], &[r"\.bak$"]);
        assert!(x.matches("/a/b.bak") && !x.matches("/a/b.bak/c"));
        assert!(Matcher::new(&["[".to_string()], &[]).is_err());
        assert!(Matcher::new(&[], &["(".to_string()]).is_err());
        let f = Filter::all();
        assert!(f.included("/x") && !f.excluded("/x"));
    }
}

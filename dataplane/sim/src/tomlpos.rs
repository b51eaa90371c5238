//! Where a byte offset lies in a TOML text: its line number and the dotted key it
//! belongs to. Error messages of the laboratory's topology files and of the router's
//! configuration (`dataplane/src/config.rs`) name `file:line:key` with these.

/// Line numbers by binary search over the line starts: linear in the text once, then
/// logarithmic per lookup (a file of a million entries loads in linear time).
#[derive(Debug, Clone)]
pub struct Lines {
    /// Byte offsets where lines 2, 3, ... start.
    starts: Vec<usize>,
    len: usize,
}

impl Lines {
    /// The line starts of `text`.
    pub fn new(text: &str) -> Lines {
        let starts = text
            .bytes()
            .enumerate()
            .filter(|(_, b)| *b == b'\n')
            .map(|(i, _)| i + 1)
            .collect();
        Lines {
            starts,
            len: text.len(),
        }
    }

    /// The 1-based line of byte `offset`.
    pub fn line_of(&self, offset: usize) -> usize {
        let end = offset.min(self.len);
        self.starts.partition_point(|&s| s <= end) + 1
    }
}

/// The dotted key at byte `offset`: the table header above it (with the index of an
/// array-of-tables entry) and the key on its line, e.g. `ports[1].mac`.
pub fn key_at(text: &str, offset: usize) -> Option<String> {
    let offset = offset.min(text.len());
    let line_start = text[..offset].rfind('\n').map_or(0, |i| i + 1);
    let line = text[line_start..].lines().next().unwrap_or("").trim();
    let header = |l: &str| -> Option<(String, bool)> {
        let l = l.trim();
        if let Some(rest) = l.strip_prefix("[[") {
            rest.split_once("]]")
                .map(|(name, _)| (name.trim().to_string(), true))
        } else if let Some(rest) = l.strip_prefix('[') {
            rest.split_once(']')
                .map(|(name, _)| (name.trim().to_string(), false))
        } else {
            None
        }
    };
    if let Some((name, _)) = header(line) {
        return Some(name);
    }
    let key = line
        .split_once('=')
        .map(|(k, _)| k.trim().trim_matches('"').to_string())
        .unwrap_or_default();
    let before = &text[..line_start];
    let mut table: Option<(String, bool)> = None;
    for l in before.lines() {
        if let Some(h) = header(l) {
            table = Some(h);
        }
    }
    let prefix = match table {
        None => String::new(),
        Some((name, false)) => name,
        Some((name, true)) => {
            let n = before
                .lines()
                .filter(|l| header(l).is_some_and(|(h, arr)| arr && h == name))
                .count();
            format!("{name}[{}]", n.saturating_sub(1))
        }
    };
    Some(match (prefix.is_empty(), key.is_empty()) {
        (true, _) => key,
        (false, true) => prefix,
        (false, false) => format!("{prefix}.{key}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_and_keys() {
        let t = "a = 1\n[[ports]]\nname = \"x\"\n[[ports]]\nmac = \"y\"\n[workers]\ncores = [1]\n";
        let l = Lines::new(t);
        assert_eq!(l.line_of(0), 1);
        assert_eq!(l.line_of(6), 2);
        assert_eq!(l.line_of(t.len() + 10), 8);
        let at = |s: &str| key_at(t, t.find(s).unwrap());
        assert_eq!(at("a = 1").as_deref(), Some("a"));
        assert_eq!(at("name").as_deref(), Some("ports[0].name"));
        assert_eq!(at("mac").as_deref(), Some("ports[1].mac"));
        assert_eq!(at("cores").as_deref(), Some("workers.cores"));
        assert_eq!(at("[workers]").as_deref(), Some("workers"));
    }
}

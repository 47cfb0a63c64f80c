//! Name patterns, as tokens and passes grant access and consumers filter
//! items: `*` matches any name, `prefix*` any name that starts with
//! `prefix`, anything else only itself.

/// Whether `name` matches `pattern`.
///
/// ```
/// use statemesh_core::pattern::matches;
///
/// assert!(matches("*", "prices"));
/// assert!(matches("prices/*", "prices/eu"));
/// assert!(!matches("prices/*", "orders"));
/// assert!(matches("orders", "orders"));
/// ```
#[must_use]
pub fn matches(pattern: &str, name: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => name.starts_with(prefix),
        None => pattern == name,
    }
}

/// Whether `name` matches any of `patterns`.
#[must_use]
pub fn any_matches<S: AsRef<str>>(patterns: &[S], name: &str) -> bool {
    patterns.iter().any(|p| matches(p.as_ref(), name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_trailing_star_is_special() {
        assert!(matches("a*b", "a*b"));
        assert!(!matches("a*b", "axb"));
        assert!(matches("", ""));
        assert!(!matches("", "a"));
        assert!(any_matches(&["x", "y*"], "yz"));
        assert!(!any_matches::<&str>(&[], "y"));
    }
}

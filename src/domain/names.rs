//! Name normalisation for conflict checks: case, accents, punctuation and word order do not
//! matter, so "Müller-Lüdenscheidt, Hans" matches "hans mueller ludenscheidt" on the tokens
//! they share.

use unicode_normalization::UnicodeNormalization;
use unicode_normalization::char::is_combining_mark;

/// Words that say nothing about who a party is.
const STOP_WORDS: &[&str] = &[
    "and", "the", "of", "inc", "ltd", "llc", "llp", "plc", "gmbh", "co", "corp", "sa", "ag", "mr",
    "mrs", "ms", "dr",
];

/// The distinct normalised tokens of a name, sorted: lower case, accents removed (NFKD without
/// combining marks; ß becomes ss, æ ae, ø o), split on anything that is not a letter or digit.
pub fn name_tokens(name: &str) -> Vec<String> {
    let folded: String = name
        .nfkd()
        .filter(|c| !is_combining_mark(*c))
        .flat_map(char::to_lowercase)
        .flat_map(|c| match c {
            'ß' => "ss".chars().collect::<Vec<_>>(),
            'æ' => "ae".chars().collect(),
            'œ' => "oe".chars().collect(),
            'ø' => vec!['o'],
            'đ' | 'ð' => vec!['d'],
            'ł' => vec!['l'],
            'þ' => "th".chars().collect(),
            other => vec![other],
        })
        .collect();
    let mut tokens: Vec<String> = folded
        .split(|c: char| !c.is_alphanumeric())
        .filter(|token| !token.is_empty() && !STOP_WORDS.contains(token))
        .map(str::to_owned)
        .collect();
    tokens.sort();
    tokens.dedup();
    tokens
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn case_accents_and_order_do_not_matter() {
        assert_eq!(name_tokens("Zoë  Ångström"), name_tokens("angstrom, ZOE"));
        assert_eq!(name_tokens("Straße GmbH"), vec!["strasse"]);
        assert_eq!(name_tokens("Acme Holdings Ltd."), vec!["acme", "holdings"]);
        assert!(name_tokens("  ,, ").is_empty());
    }
}

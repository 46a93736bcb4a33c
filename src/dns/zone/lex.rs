//! Splits a master file into entries: one directive or one record each, with its line.
//!
//! RFC 1035 §5.1 is line oriented except for three things, all handled here so that nothing
//! after this stage sees raw file text: parentheses join lines, `;` starts a comment outside a
//! quoted string, and a quoted string may hold blanks, `;`, parentheses and line breaks. An entry
//! is the list of its tokens plus whether its first line began with a blank (which means "same
//! owner as the previous record"). Words keep their `\` escapes as written, because what an
//! escape means depends on where the word goes (a `\.` inside a name is not a label break);
//! quoted strings are decoded here, because they are always character strings.
//!
//! The lexer works on bytes, not `str`: a zone file is not required to be UTF-8.

use std::borrow::Cow;

/// One token of an entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Token<'a> {
    /// An unquoted word, escapes as written.
    Word(&'a [u8]),
    /// The decoded contents of a `"quoted string"`.
    Quoted(Cow<'a, [u8]>),
}

/// A directive or a record: everything between two line ends outside parentheses.
#[derive(Debug)]
pub(super) struct Entry<'a> {
    /// The 1-based line of the entry's first token.
    pub line: usize,
    /// The entry's line began with a blank: a record without an owner field.
    pub blank_owner: bool,
    /// The tokens, never empty.
    pub tokens: Vec<Token<'a>>,
}

/// A syntax error that makes an entry unusable.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct LexError {
    /// The 1-based line the error concerns.
    pub line: usize,
    /// What is wrong and how to fix it.
    pub message: String,
}

/// Iterates over the entries of a master file.
pub(super) struct Lexer<'a> {
    src: &'a [u8],
    pos: usize,
    line: usize,
}

impl<'a> Lexer<'a> {
    /// A lexer at the start of `src`.
    pub fn new(src: &'a [u8]) -> Self {
        Self {
            src,
            pos: 0,
            line: 1,
        }
    }

    fn peek(&self) -> Option<u8> {
        self.src.get(self.pos).copied()
    }

    /// Reads one entry; `None` at the end of the input.
    fn entry(&mut self) -> Option<Result<Entry<'a>, LexError>> {
        loop {
            self.peek()?;
            let blank_owner = matches!(self.peek(), Some(b' ' | b'\t'));
            let mut tokens = Vec::new();
            let mut line = self.line;
            let mut depth = 0usize;
            let mut open_line = 0;
            let mut error: Option<LexError> = None;
            loop {
                let Some(byte) = self.peek() else {
                    if depth > 0 {
                        return Some(Err(LexError {
                            line: open_line,
                            message: "'(' is never closed: add the matching ')'".to_owned(),
                        }));
                    }
                    break;
                };
                match byte {
                    b'\n' => {
                        self.pos += 1;
                        self.line += 1;
                        if depth == 0 {
                            break;
                        }
                    }
                    b' ' | b'\t' | b'\r' => self.pos += 1,
                    b';' => self.skip_comment(),
                    b'(' => {
                        if depth == 0 {
                            open_line = self.line;
                        }
                        depth += 1;
                        self.pos += 1;
                    }
                    b')' => {
                        self.pos += 1;
                        if depth == 0 {
                            error.get_or_insert(LexError {
                                line: self.line,
                                message: "')' without a matching '('".to_owned(),
                            });
                        } else {
                            depth -= 1;
                        }
                    }
                    b'"' => {
                        if tokens.is_empty() {
                            line = self.line;
                        }
                        match self.quoted() {
                            Ok(token) => tokens.push(token),
                            Err(e) => return Some(Err(e)),
                        }
                    }
                    _ => {
                        if tokens.is_empty() {
                            line = self.line;
                        }
                        match self.word() {
                            Ok(token) => tokens.push(token),
                            Err(e) => {
                                error.get_or_insert(e);
                            }
                        }
                    }
                }
            }
            if let Some(error) = error {
                return Some(Err(error));
            }
            if !tokens.is_empty() {
                return Some(Ok(Entry {
                    line,
                    blank_owner,
                    tokens,
                }));
            }
            // A blank or comment-only line: nothing to report, read on.
        }
    }

    fn skip_comment(&mut self) {
        while let Some(byte) = self.peek() {
            if byte == b'\n' {
                return;
            }
            self.pos += 1;
        }
    }

    /// An unquoted word: up to a blank, a line end, `;` or a parenthesis not escaped by `\`.
    fn word(&mut self) -> Result<Token<'a>, LexError> {
        let start = self.pos;
        while let Some(byte) = self.peek() {
            match byte {
                b' ' | b'\t' | b'\r' | b'\n' | b';' | b'(' | b')' => break,
                b'\\' => {
                    self.pos += 1;
                    match self.peek() {
                        None | Some(b'\n') => {
                            return Err(LexError {
                                line: self.line,
                                message: "a '\\' at the end of a line escapes nothing: remove it"
                                    .to_owned(),
                            });
                        }
                        Some(_) => self.pos += 1,
                    }
                }
                _ => self.pos += 1,
            }
        }
        Ok(Token::Word(&self.src[start..self.pos]))
    }

    /// A quoted string, decoded. It may span lines; an unclosed quote swallows the rest of the
    /// file, so that error ends lexing.
    fn quoted(&mut self) -> Result<Token<'a>, LexError> {
        let open_line = self.line;
        self.pos += 1;
        let start = self.pos;
        let mut escaped = false;
        loop {
            match self.peek() {
                None => {
                    return Err(LexError {
                        line: open_line,
                        message: "the quoted string starting here is never closed: add the \
                                  closing '\"' (write \\\" for a quote inside the string)"
                            .to_owned(),
                    });
                }
                Some(b'"') => break,
                Some(b'\\') => {
                    escaped = true;
                    if self.src.get(self.pos + 1) == Some(&b'\n') {
                        self.line += 1;
                    }
                    self.pos += 2;
                }
                Some(b'\n') => {
                    self.line += 1;
                    self.pos += 1;
                }
                Some(_) => self.pos += 1,
            }
        }
        let raw = &self.src[start..self.pos.min(self.src.len())];
        self.pos += 1;
        if !escaped {
            return Ok(Token::Quoted(Cow::Borrowed(raw)));
        }
        unescape(raw)
            .map(|bytes| Token::Quoted(Cow::Owned(bytes)))
            .map_err(|message| LexError {
                line: open_line,
                message,
            })
    }
}

impl<'a> Iterator for Lexer<'a> {
    type Item = Result<Entry<'a>, LexError>;

    /// The next entry. An unclosed quote or parenthesis is reported once, at the end of the
    /// input it swallowed.
    fn next(&mut self) -> Option<Self::Item> {
        self.entry()
    }
}

/// Decodes RFC 1035 escapes: `\DDD` (three decimal digits, at most 255) is that byte, `\X` is X.
pub(super) fn unescape(raw: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        if raw[i] != b'\\' {
            out.push(raw[i]);
            i += 1;
            continue;
        }
        let (byte, len) = escape_at(raw, i)?;
        out.push(byte);
        i += len;
    }
    Ok(out)
}

/// The byte an escape starting at `raw[at] == b'\\'` stands for, and the escape's length.
pub(super) fn escape_at(raw: &[u8], at: usize) -> Result<(u8, usize), String> {
    match raw.get(at + 1) {
        None => Err("a '\\' at the end of a word escapes nothing: remove it".to_owned()),
        Some(d) if d.is_ascii_digit() => {
            let digits = raw
                .get(at + 1..at + 4)
                .filter(|s| s.iter().all(u8::is_ascii_digit));
            let value = digits.map(|s| s.iter().fold(0u32, |v, d| v * 10 + u32::from(d - b'0')));
            match value.and_then(|v| u8::try_from(v).ok()) {
                Some(byte) => Ok((byte, 4)),
                None => Err(format!(
                    "bad escape {:?}: \\DDD needs three decimal digits, at most 255 (\\032 is a \
                     space)",
                    String::from_utf8_lossy(&raw[at..raw.len().min(at + 4)])
                )),
            }
        }
        Some(&x) => Ok((x, 2)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type Lexed<'a> = Result<(usize, bool, Vec<Token<'a>>), LexError>;

    fn entries(src: &str) -> Vec<Lexed<'_>> {
        Lexer::new(src.as_bytes())
            .map(|e| e.map(|e| (e.line, e.blank_owner, e.tokens)))
            .collect()
    }

    fn w(s: &str) -> Token<'_> {
        Token::Word(s.as_bytes())
    }

    fn q(s: &str) -> Token<'static> {
        Token::Quoted(Cow::Owned(s.as_bytes().to_vec()))
    }

    #[test]
    fn lines_comments_and_blank_owners() {
        let got = entries("; c\n\na 1 ; x\n\t b\tc\n  ; only\n");
        assert_eq!(
            got,
            vec![
                Ok((3, false, vec![w("a"), w("1")])),
                Ok((4, true, vec![w("b"), w("c")]))
            ]
        );
    }

    #[test]
    fn parentheses_join_lines_and_hide_line_ends() {
        let got = entries("@ SOA a b (\n 1 ; s\n 2 )\nx A 1\n");
        assert_eq!(
            got,
            vec![
                Ok((
                    1,
                    false,
                    vec![w("@"), w("SOA"), w("a"), w("b"), w("1"), w("2")]
                )),
                Ok((4, false, vec![w("x"), w("A"), w("1")])),
            ]
        );
    }

    #[test]
    fn quoted_strings_keep_blanks_semicolons_and_decode_escapes() {
        let got = entries("t TXT \"a ; (b)\" \"q\\\"\\065\\\\\" x\\;y\nz A 1");
        assert_eq!(
            got,
            vec![
                Ok((
                    1,
                    false,
                    vec![w("t"), w("TXT"), q("a ; (b)"), q("q\"A\\"), w("x\\;y")]
                )),
                Ok((2, false, vec![w("z"), w("A"), w("1")])),
            ]
        );
    }

    #[test]
    fn a_quoted_string_may_span_lines() {
        let got = entries("t TXT \"a\nb\"\nz A 1\n");
        assert_eq!(
            got,
            vec![
                Ok((1, false, vec![w("t"), w("TXT"), q("a\nb")])),
                Ok((3, false, vec![w("z"), w("A"), w("1")]))
            ]
        );
    }

    #[test]
    fn errors_name_their_line() {
        let got = entries("a A 1\nb A 2 )\nc A 3\n");
        assert_eq!(got.len(), 3);
        assert_eq!(got[1].as_ref().err().map(|e| e.line), Some(2));
        assert!(got[2].is_ok());

        let got = entries("a A 1\nb SOA ( 1\n2\n");
        assert_eq!(
            got.last().and_then(|r| r.as_ref().err()).map(|e| e.line),
            Some(2)
        );

        let got = entries("a TXT \"x\nb A 1\n");
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].as_ref().err().map(|e| e.line), Some(1));

        let got = entries("a TXT \"\\999\"\nb A 1\n");
        assert_eq!(got[0].as_ref().err().map(|e| e.line), Some(1));
    }

    #[test]
    fn unescape_decodes_decimal_and_single_escapes() {
        assert_eq!(unescape(b"a\\046b\\\\\\\"").ok(), Some(b"a.b\\\"".to_vec()));
        assert_eq!(unescape(b"\\255\\000").ok(), Some(vec![255, 0]));
        assert!(unescape(b"\\256").is_err());
        assert!(unescape(b"\\12").is_err());
        assert!(unescape(b"x\\").is_err());
    }
}

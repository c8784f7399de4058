//! Symbol expressions: the dims, attributes and row counts of the RON.
//!
//! Grammar: numbers (`128`, `1e-6`), symbols (`E`, `coff`, `n_layer`), `+ - * / %`
//! and parentheses, with the usual precedence. Evaluation is in f64; integer
//! contexts ([`eval_int`]) require an integral result. `/` is exact division (the
//! result must be integral where an integer is needed), `%` the remainder.

use std::collections::BTreeMap;

/// Symbol bindings for evaluation.
pub type Env = BTreeMap<String, f64>;

/// Why an expression could not be evaluated.
#[derive(Debug, Clone, PartialEq)]
pub enum ExprError {
    Syntax(String),
    Unbound(String),
    NotInteger(f64),
}

impl std::fmt::Display for ExprError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ExprError::Syntax(m) => write!(f, "syntax error: {m}"),
            ExprError::Unbound(s) => write!(f, "unbound symbol `{s}`"),
            ExprError::NotInteger(v) => write!(f, "value {v} is not an integer"),
        }
    }
}

/// Evaluate `src` under `env`.
pub fn eval(src: &str, env: &Env) -> Result<f64, ExprError> {
    let toks = lex(src)?;
    let mut p = Parser {
        toks: &toks,
        at: 0,
        env,
    };
    let v = p.expr()?;
    if p.at != toks.len() {
        return Err(ExprError::Syntax(format!(
            "unexpected `{}` in `{src}`",
            toks[p.at].text()
        )));
    }
    Ok(v)
}

/// Evaluate `src` as an integer.
pub fn eval_int(src: &str, env: &Env) -> Result<i64, ExprError> {
    let v = eval(src, env)?;
    if v.fract() != 0.0 || !v.is_finite() {
        return Err(ExprError::NotInteger(v));
    }
    Ok(v as i64)
}

/// The symbols an expression mentions.
pub fn symbols(src: &str) -> Result<Vec<String>, ExprError> {
    Ok(lex(src)?
        .into_iter()
        .filter_map(|t| match t {
            Tok::Ident(s) => Some(s),
            _ => None,
        })
        .collect())
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Num(f64),
    Ident(String),
    Op(char),
}

impl Tok {
    fn text(&self) -> String {
        match self {
            Tok::Num(n) => n.to_string(),
            Tok::Ident(s) => s.clone(),
            Tok::Op(c) => c.to_string(),
        }
    }
}

fn lex(src: &str) -> Result<Vec<Tok>, ExprError> {
    let chars: Vec<char> = src.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
        } else if c.is_ascii_digit() || c == '.' {
            let start = i;
            while i < chars.len()
                && (chars[i].is_ascii_digit()
                    || chars[i] == '.'
                    || chars[i] == 'e'
                    || ((chars[i] == '-' || chars[i] == '+') && chars[i - 1] == 'e'))
            {
                i += 1;
            }
            let s: String = chars[start..i].iter().collect();
            let v = s
                .parse::<f64>()
                .map_err(|_| ExprError::Syntax(format!("bad number `{s}`")))?;
            out.push(Tok::Num(v));
        } else if c.is_ascii_alphabetic() || c == '_' {
            let start = i;
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            out.push(Tok::Ident(chars[start..i].iter().collect()));
        } else if "+-*/%()".contains(c) {
            out.push(Tok::Op(c));
            i += 1;
        } else {
            return Err(ExprError::Syntax(format!(
                "unexpected character `{c}` in `{src}`"
            )));
        }
    }
    if out.is_empty() {
        return Err(ExprError::Syntax("empty expression".into()));
    }
    Ok(out)
}

struct Parser<'a> {
    toks: &'a [Tok],
    at: usize,
    env: &'a Env,
}

impl Parser<'_> {
    fn peek_op(&self) -> Option<char> {
        match self.toks.get(self.at) {
            Some(Tok::Op(c)) => Some(*c),
            _ => None,
        }
    }

    fn expr(&mut self) -> Result<f64, ExprError> {
        let mut v = self.term()?;
        while let Some(c @ ('+' | '-')) = self.peek_op() {
            self.at += 1;
            let r = self.term()?;
            v = if c == '+' { v + r } else { v - r };
        }
        Ok(v)
    }

    fn term(&mut self) -> Result<f64, ExprError> {
        let mut v = self.factor()?;
        while let Some(c @ ('*' | '/' | '%')) = self.peek_op() {
            self.at += 1;
            let r = self.factor()?;
            v = match c {
                '*' => v * r,
                '/' => v / r,
                _ => v % r,
            };
        }
        Ok(v)
    }

    fn factor(&mut self) -> Result<f64, ExprError> {
        let tok = self.toks.get(self.at).cloned();
        self.at += 1;
        match tok {
            Some(Tok::Num(n)) => Ok(n),
            Some(Tok::Ident(s)) => self.env.get(&s).copied().ok_or(ExprError::Unbound(s)),
            Some(Tok::Op('-')) => Ok(-self.factor()?),
            Some(Tok::Op('(')) => {
                let v = self.expr()?;
                if self.peek_op() != Some(')') {
                    return Err(ExprError::Syntax("missing `)`".into()));
                }
                self.at += 1;
                Ok(v)
            }
            Some(t) => Err(ExprError::Syntax(format!("unexpected `{}`", t.text()))),
            None => Err(ExprError::Syntax("unexpected end of expression".into())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn precedence_and_symbols() {
        let env: Env = [("E".to_string(), 256.0), ("coff".to_string(), 2.0)].into();
        assert_eq!(eval_int("coff*E + 1", &env), Ok(513));
        assert_eq!(eval_int("(E+E)/4 % 100", &env), Ok(28));
        assert_eq!(eval("1e-6", &env), Ok(1e-6));
        assert_eq!(eval("1/16", &env), Ok(0.0625));
        assert_eq!(eval_int("X", &env), Err(ExprError::Unbound("X".into())));
        assert!(matches!(eval("E +", &env), Err(ExprError::Syntax(_))));
        assert_eq!(
            eval_int("E/3", &env),
            Err(ExprError::NotInteger(256.0 / 3.0))
        );
    }
}

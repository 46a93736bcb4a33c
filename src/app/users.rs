//! Managing users: the rules for adding one (a plausible e-mail address, a display name, a
//! password long enough, hashed with argon2id) and issuing API tokens. `onebox user` calls
//! these; the data layer only stores what they hand it.

use super::auth::{password, token};
use crate::db::entity::user;
use crate::db::users::{self, NewUser, Role, UserError};
use crate::db::{Db, DbError};

/// The longest e-mail address (the schema's column; RFC 5321's limit).
pub const EMAIL_MAX: usize = 254;

/// The longest display name, in characters (the schema's column).
pub const NAME_MAX: usize = 100;

/// Why a user could not be added or given a token.
#[derive(Debug, thiserror::Error)]
pub enum UsersError {
    /// The input is not acceptable; the message says what to do.
    #[error("{0}")]
    Invalid(String),
    /// Another user has this e-mail address.
    #[error("a user with the e-mail address {0} exists already")]
    EmailTaken(String),
    /// No user has this e-mail address.
    #[error("no user has the e-mail address {0}: add one with `onebox user add --email {0}`")]
    NoSuchUser(String),
    /// The database failed.
    #[error(transparent)]
    Db(#[from] DbError),
    /// Something else failed (the random source, the hasher).
    #[error("{0}")]
    Internal(String),
}

impl UsersError {
    /// Whether the input was at fault (rather than the database or the system).
    pub fn is_input(&self) -> bool {
        matches!(
            self,
            Self::Invalid(_) | Self::EmailTaken(_) | Self::NoSuchUser(_)
        )
    }
}

impl From<super::AppError> for UsersError {
    fn from(error: super::AppError) -> Self {
        Self::Internal(error.to_string())
    }
}

/// `email` trimmed and lower-cased, if it looks like an e-mail address: one `@`, a local part
/// and a domain with a dot, no spaces, control characters or the punctuation of address
/// lists (`<>()[],;:"\`), at most [`EMAIL_MAX`] bytes.
pub fn check_email(email: &str) -> Result<String, String> {
    let email = email.trim().to_lowercase();
    let bad = || format!("{email:?} is not an e-mail address: give one such as editor@foobar.com");
    if email.len() > EMAIL_MAX {
        return Err(format!(
            "the e-mail address is too long: at most {EMAIL_MAX} bytes"
        ));
    }
    let forbidden = |c: char| c.is_whitespace() || c.is_control() || "<>()[],;:\"\\".contains(c);
    let Some((local, domain)) = email.split_once('@') else {
        return Err(bad());
    };
    let domain_ok = domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !domain.contains("..")
        && !domain.contains('@');
    if local.is_empty() || local.len() > 64 || !domain_ok || email.contains(forbidden) {
        return Err(bad());
    }
    Ok(email)
}

/// The display name: `name` trimmed, or the e-mail address's local part when there is none;
/// one line of at most [`NAME_MAX`] characters.
pub fn check_name(name: Option<&str>, email: &str) -> Result<String, String> {
    let name = match name.map(str::trim) {
        Some(name) if !name.is_empty() => name.to_owned(),
        _ => email.split('@').next().unwrap_or(email).to_owned(),
    };
    if name.chars().count() > NAME_MAX {
        return Err(format!(
            "the display name is too long: at most {NAME_MAX} characters"
        ));
    }
    if name.chars().any(char::is_control) {
        return Err("the display name must be one line of text".to_owned());
    }
    Ok(name)
}

/// Adds a user after checking every rule; the password is hashed here (tens of
/// milliseconds: call it from a command, not from a busy runtime).
pub async fn add(
    db: &Db,
    email: &str,
    name: Option<&str>,
    password: &str,
    role: Role,
) -> Result<user::Model, UsersError> {
    let email = check_email(email).map_err(UsersError::Invalid)?;
    let display_name = check_name(name, &email).map_err(UsersError::Invalid)?;
    password::check_new(password).map_err(UsersError::Invalid)?;
    let password_hash = password::hash(password)?;
    let new = NewUser {
        email,
        display_name,
        password_hash,
        role,
    };
    users::insert(db, new).await.map_err(|e| match e {
        UserError::EmailTaken(email) => UsersError::EmailTaken(email),
        UserError::Db(e) => UsersError::Db(e),
    })
}

/// Issues a new API token for the user with this e-mail address, replacing any earlier one,
/// and returns it: the only time it is seen, as only its digest is stored.
pub async fn issue_api_token(db: &Db, email: &str) -> Result<String, UsersError> {
    let email = email.trim().to_lowercase();
    let user = users::by_email(db, &email)
        .await?
        .ok_or_else(|| UsersError::NoSuchUser(email.clone()))?;
    let token = token::new()?;
    users::set_api_token(db, user.id, &token::digest(&token)).await?;
    Ok(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn email_addresses() {
        assert_eq!(
            check_email("  Ed@FooBar.com ").as_deref(),
            Ok("ed@foobar.com")
        );
        assert!(check_email("a.b+tag@sub.example.org").is_ok());
        for bad in [
            "",
            "ed",
            "@foobar.com",
            "ed@",
            "ed@localhost",
            "ed@foobar.com.",
            "ed@.foobar.com",
            "ed@foo..com",
            "ed@@foobar.com",
            "e d@foobar.com",
            "ed@foo@bar.com",
            "<ed@foobar.com>",
            "ed@foobar.com, eve@evil.example",
        ] {
            assert!(check_email(bad).is_err(), "{bad:?}");
        }
        let long = format!("{}@foobar.com", "a".repeat(250));
        assert!(check_email(&long).is_err());
    }

    #[test]
    fn display_names() {
        assert_eq!(check_name(None, "ed@foobar.com").as_deref(), Ok("ed"));
        assert_eq!(check_name(Some("  "), "ed@foobar.com").as_deref(), Ok("ed"));
        assert_eq!(
            check_name(Some(" Ed Itor "), "ed@foobar.com").as_deref(),
            Ok("Ed Itor")
        );
        assert!(check_name(Some(&"x".repeat(NAME_MAX + 1)), "e@x.org").is_err());
        assert!(check_name(Some("a\nb"), "e@x.org").is_err());
    }
}

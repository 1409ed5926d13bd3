//! The authentication roles (relay.md §1) as extractors: a handler names its role in its
//! signature, and the check runs before its body is read — a caller without the role
//! gets its 401/403 whatever it sent.

use super::state::Relay;
use crate::http::ApiError;
use crate::keys::VerifiedSigner;
use poem::{FromRequest, Request, RequestBody};
use std::sync::Arc;

fn relay(req: &Request) -> Result<&Arc<Relay>, ApiError> {
    req.data::<Arc<Relay>>()
        .ok_or_else(|| ApiError::internal("relay state is not attached"))
}

/// Any valid, fresh, unreplayed signature.
pub struct Miner(pub VerifiedSigner);

/// A signature by an allowed validator (any signer in test mode).
pub struct Validator(pub VerifiedSigner);

/// A signature by the UID0 validator.
pub struct Uid0(pub VerifiedSigner);

/// The admin token or the dashboard login.
pub struct Admin;

impl<'a> FromRequest<'a> for Miner {
    async fn from_request(req: &'a Request, _body: &mut RequestBody) -> poem::Result<Self> {
        Ok(Miner(relay(req)?.signer(req)?))
    }
}

impl<'a> FromRequest<'a> for Validator {
    async fn from_request(req: &'a Request, _body: &mut RequestBody) -> poem::Result<Self> {
        Ok(Validator(relay(req)?.validator(req)?))
    }
}

impl<'a> FromRequest<'a> for Uid0 {
    async fn from_request(req: &'a Request, _body: &mut RequestBody) -> poem::Result<Self> {
        Ok(Uid0(relay(req)?.uid0_signer(req)?))
    }
}

impl<'a> FromRequest<'a> for Admin {
    async fn from_request(req: &'a Request, _body: &mut RequestBody) -> poem::Result<Self> {
        relay(req)?.admin(req)?;
        Ok(Admin)
    }
}

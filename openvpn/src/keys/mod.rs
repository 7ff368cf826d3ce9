//! Key material files a client config carries: the OpenVPN static key (tls-auth, tls-crypt), the tls-crypt-v2
//! client key (and, for server-side tools, the 128-byte server keys), X.509 certificates and private keys.
//!
//! Layer: pure parsers of file text into raw bytes the engine takes (no crypto is run here, except deriving an
//! Ed25519 public key to check that the client certificate and key belong together). Everything is no_std,
//! never panics on any input, and reports a small [`KeyError`].

pub mod base64;
pub mod cert;
pub mod crl;
pub mod der;
mod error;
pub mod pem;
pub mod private_key;
pub mod server_key;
pub mod static_key;
pub mod tls_crypt_v2;

pub use cert::{parse_chain, Certificate};
pub use error::{CrlProblem, KeyError};
pub use private_key::{PrivateKey, PrivateKeyFormat, PublicKey};
pub use server_key::{ServerKey, ServerKeyKind, SERVER_KEY_LEN};
pub use static_key::{KeyDirection, KeySlices, StaticKey, STATIC_KEY_LEN};
pub use tls_crypt_v2::{Metadata, TlsCryptV2ClientKey};

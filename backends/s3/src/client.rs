//! object_store's S3 client over Glint's own HTTP and TLS stacks: hyper 1 with OpenSSL for
//! the transport, OpenSSL for SigV4's SHA-256 and HMAC. Signing itself is object_store's.

use async_trait::async_trait;
use http_body_util::BodyExt;
use hyper_util::client::legacy::Client;
use object_store::client::{
    CryptoProvider, DigestAlgorithm, DigestContext, HmacContext, HttpClient, HttpConnector,
    HttpError, HttpErrorKind, HttpRequest, HttpRequestBody, HttpResponse, HttpResponseBody,
    HttpService, Signer, SigningAlgorithm,
};
use object_store::ClientOptions;
use openssl::hash::{Hasher, MessageDigest};
use openssl::pkey::PKey;

type Https = glint_store::net::HttpsConnector;

/// Connections over hyper, TLS by OpenSSL, trusting `s3_store_cacert` when given.
#[derive(Debug, Clone)]
pub(crate) struct OpensslConnector {
    pub(crate) cacert: Option<std::path::PathBuf>,
}

impl OpensslConnector {
    pub(crate) fn client(&self) -> Result<HttpClient, String> {
        let https = glint_store::net::https_connector(self.cacert.as_deref(), false)
            .map_err(|e| format!("s3_store_cacert: {e}"))?;
        Ok(HttpClient::new(Transport(glint_store::net::client(https))))
    }
}

impl HttpConnector for OpensslConnector {
    fn connect(&self, _options: &ClientOptions) -> object_store::Result<HttpClient> {
        self.client().map_err(|e| object_store::Error::Generic {
            store: "S3",
            source: e.into(),
        })
    }
}

#[derive(Debug)]
struct Transport(Client<Https, HttpRequestBody>);

#[async_trait]
impl HttpService for Transport {
    async fn call(&self, request: HttpRequest) -> Result<HttpResponse, HttpError> {
        let response = self.0.request(request).await.map_err(|e| {
            let kind = if e.is_connect() {
                HttpErrorKind::Connect
            } else {
                HttpErrorKind::Request
            };
            // hyper's own text ("client error (Connect)") hides the cause, and object_store
            // keeps only text: spell out the whole chain (a refused connection, a TLS
            // certificate that failed verification).
            let text = glint_store::net::error_chain(&e);
            HttpError::new(kind, std::io::Error::other(text))
        })?;
        let (parts, body) = response.into_parts();
        let body = body.map_err(|e| HttpError::new(HttpErrorKind::Interrupted, e));
        Ok(HttpResponse::from_parts(parts, HttpResponseBody::new(body)))
    }
}

/// SHA-256 and HMAC-SHA256 from OpenSSL.
#[derive(Debug)]
pub(crate) struct OpensslCrypto;

fn crypto_error(e: openssl::error::ErrorStack) -> object_store::Error {
    object_store::Error::Generic {
        store: "S3",
        source: Box::new(e),
    }
}

struct Sha256 {
    hasher: Hasher,
    digest: Vec<u8>,
}

impl DigestContext for Sha256 {
    fn update(&mut self, data: &[u8]) {
        // Only fails on an OpenSSL internal error, which `finish` then reports.
        let _ = self.hasher.update(data);
    }

    fn finish(&mut self) -> object_store::Result<&[u8]> {
        self.digest = self.hasher.finish().map_err(crypto_error)?.to_vec();
        Ok(&self.digest)
    }
}

/// HMAC over a short message (SigV4 signs strings of a few hundred bytes), computed at once.
struct HmacSha256 {
    key: Vec<u8>,
    message: Vec<u8>,
    mac: Vec<u8>,
}

impl HmacContext for HmacSha256 {
    fn update(&mut self, data: &[u8]) {
        self.message.extend_from_slice(data);
    }

    fn finish(&mut self) -> object_store::Result<&[u8]> {
        let key = PKey::hmac(&self.key).map_err(crypto_error)?;
        let mut signer =
            openssl::sign::Signer::new(MessageDigest::sha256(), &key).map_err(crypto_error)?;
        self.mac = signer
            .sign_oneshot_to_vec(&self.message)
            .map_err(crypto_error)?;
        Ok(&self.mac)
    }
}

impl CryptoProvider for OpensslCrypto {
    fn digest(&self, _algorithm: DigestAlgorithm) -> object_store::Result<Box<dyn DigestContext>> {
        Ok(Box::new(Sha256 {
            hasher: Hasher::new(MessageDigest::sha256()).map_err(crypto_error)?,
            digest: Vec::new(),
        }))
    }

    fn hmac(
        &self,
        _algorithm: DigestAlgorithm,
        secret: &[u8],
    ) -> object_store::Result<Box<dyn HmacContext>> {
        Ok(Box::new(HmacSha256 {
            key: secret.to_vec(),
            message: Vec::new(),
            mac: Vec::new(),
        }))
    }

    fn sign(
        &self,
        _algorithm: SigningAlgorithm,
        _pem: &[u8],
    ) -> object_store::Result<Box<dyn Signer>> {
        Err(object_store::Error::NotSupported {
            source: "S3 signs with HMAC only".into(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn hmac_matches_rfc_4231() {
        // Test case 2 of RFC 4231.
        let mut mac = OpensslCrypto
            .hmac(DigestAlgorithm::Sha256, b"Jefe")
            .expect("hmac");
        mac.update(b"what do ya want ");
        mac.update(b"for nothing?");
        assert_eq!(
            hex(mac.finish().expect("finishes")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}

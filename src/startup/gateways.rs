//! Builds the online channels at start-up: from the `BILLING_ALIPAY_*` / `BILLING_WECHAT_*`
//! settings (a channel whose settings are incomplete is disabled and says which ones it lacks;
//! a key that is present but malformed stops start-up: a half-configured channel must never
//! run silently), or, with `--sandbox`, wired to the loopback simulators. The use cases only
//! see the finished [`Gateways`]; configuration and simulators stay up here.

use std::path::Path;
use std::sync::Arc;

use anyhow::Context;

use crate::app::gateways::{Channel, Gateways};
use crate::config::{AlipayArgs, WechatArgs};
use crate::gateway::alipay::client::{AlipayClient, AlipayConfig};
use crate::gateway::keys::{ApiV3Key, PlatformCertificate, PrivateKey, PublicKey};
use crate::gateway::wechat::client::{WechatClient, WechatConfig};
use crate::gateway::wechat::sign::{MerchantSigner, WechatKeySet};
use crate::sandbox::alipay::{AlipaySimConfig, AlipaySimulator};
use crate::sandbox::server::gateway_keys;
use crate::sandbox::wechat::{WechatSimConfig, WechatSimulator};

/// The channels from their settings (an inherent constructor kept beside the wiring it needs,
/// so `app` never imports `config`).
impl Gateways {
    pub fn from_config(alipay: &AlipayArgs, wechat: &WechatArgs) -> anyhow::Result<Self> {
        let http = crate::gateway::error::http_client()?;
        Ok(Self {
            alipay: alipay_channel(alipay, &http)?,
            wechat: wechat_channel(wechat, &http)?,
        })
    }
}

fn missing(channel: &str, names: &[(&str, bool)]) -> Option<String> {
    let absent: Vec<&str> = names
        .iter()
        .filter(|(_, present)| !present)
        .map(|(name, _)| *name)
        .collect();
    (!absent.is_empty()).then(|| {
        format!(
            "the {channel} channel is disabled: set {}",
            absent.join(", ")
        )
    })
}

fn read_key_file(path: &Path, setting: &str) -> anyhow::Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("{setting}: reading {}", path.display()))
}

fn alipay_channel(
    args: &AlipayArgs,
    http: &reqwest::Client,
) -> anyhow::Result<Channel<AlipayClient>> {
    let (Some(app_id), Some(seller_id), Some(private_key), Some(public_key), Some(notify_url)) = (
        &args.alipay_app_id,
        &args.alipay_seller_id,
        &args.alipay_app_private_key_file,
        &args.alipay_public_key_file,
        &args.alipay_notify_url,
    ) else {
        let why = missing(
            "Alipay",
            &[
                ("BILLING_ALIPAY_APP_ID", args.alipay_app_id.is_some()),
                ("BILLING_ALIPAY_SELLER_ID", args.alipay_seller_id.is_some()),
                (
                    "BILLING_ALIPAY_APP_PRIVATE_KEY_FILE",
                    args.alipay_app_private_key_file.is_some(),
                ),
                (
                    "BILLING_ALIPAY_PUBLIC_KEY_FILE",
                    args.alipay_public_key_file.is_some(),
                ),
                (
                    "BILLING_ALIPAY_NOTIFY_URL",
                    args.alipay_notify_url.is_some(),
                ),
            ],
        );
        return Ok(Channel::Disabled(why.unwrap_or_default()));
    };
    let app_private_key = PrivateKey::parse(&read_key_file(
        private_key,
        "BILLING_ALIPAY_APP_PRIVATE_KEY_FILE",
    )?)
    .context("BILLING_ALIPAY_APP_PRIVATE_KEY_FILE is not a usable RSA private key")?;
    let alipay_public_key = PublicKey::parse(&read_key_file(
        public_key,
        "BILLING_ALIPAY_PUBLIC_KEY_FILE",
    )?)
    .context("BILLING_ALIPAY_PUBLIC_KEY_FILE is not a usable RSA public key")?;
    let config = AlipayConfig {
        app_id: app_id.clone(),
        seller_id: seller_id.clone(),
        app_private_key,
        alipay_public_key,
        gateway_url: args.alipay_gateway_url.clone(),
        notify_url: notify_url.clone(),
    };
    Ok(Channel::Enabled(Arc::new(AlipayClient::new(
        config,
        http.clone(),
    ))))
}

fn wechat_channel(
    args: &WechatArgs,
    http: &reqwest::Client,
) -> anyhow::Result<Channel<WechatClient>> {
    let has_verifier =
        args.wechat_public_key_file.is_some() || !args.wechat_platform_cert_files.is_empty();
    let (
        Some(mch_id),
        Some(app_id),
        Some(key_file),
        Some(serial),
        Some(v3_file),
        Some(notify_url),
        true,
    ) = (
        &args.wechat_mch_id,
        &args.wechat_app_id,
        &args.wechat_mch_private_key_file,
        &args.wechat_mch_serial_no,
        &args.wechat_apiv3_key_file,
        &args.wechat_notify_url,
        has_verifier,
    )
    else {
        let why = missing(
            "WeChat Pay",
            &[
                ("BILLING_WECHAT_MCH_ID", args.wechat_mch_id.is_some()),
                ("BILLING_WECHAT_APP_ID", args.wechat_app_id.is_some()),
                (
                    "BILLING_WECHAT_MCH_PRIVATE_KEY_FILE",
                    args.wechat_mch_private_key_file.is_some(),
                ),
                (
                    "BILLING_WECHAT_MCH_SERIAL_NO",
                    args.wechat_mch_serial_no.is_some(),
                ),
                (
                    "BILLING_WECHAT_APIV3_KEY_FILE",
                    args.wechat_apiv3_key_file.is_some(),
                ),
                (
                    "BILLING_WECHAT_NOTIFY_URL",
                    args.wechat_notify_url.is_some(),
                ),
                (
                    "BILLING_WECHAT_PUBLIC_KEY_FILE (or BILLING_WECHAT_PLATFORM_CERT_FILES)",
                    has_verifier,
                ),
            ],
        );
        return Ok(Channel::Disabled(why.unwrap_or_default()));
    };
    let private_key = PrivateKey::parse(&read_key_file(
        key_file,
        "BILLING_WECHAT_MCH_PRIVATE_KEY_FILE",
    )?)
    .context("BILLING_WECHAT_MCH_PRIVATE_KEY_FILE is not a usable RSA private key")?;
    let api_v3_key =
        ApiV3Key::parse(read_key_file(v3_file, "BILLING_WECHAT_APIV3_KEY_FILE")?.trim_end())
            .context("BILLING_WECHAT_APIV3_KEY_FILE must hold the 32-character APIv3 key")?;
    let mut keys = WechatKeySet::new();
    if let Some(path) = &args.wechat_public_key_file {
        let key_id = args.wechat_public_key_id.as_deref().context(
            "BILLING_WECHAT_PUBLIC_KEY_FILE needs BILLING_WECHAT_PUBLIC_KEY_ID (PUB_KEY_ID_...)",
        )?;
        let key = PublicKey::parse(&read_key_file(path, "BILLING_WECHAT_PUBLIC_KEY_FILE")?)
            .context("BILLING_WECHAT_PUBLIC_KEY_FILE is not a usable RSA public key")?;
        keys.add_public_key(key_id, key)
            .context("BILLING_WECHAT_PUBLIC_KEY_ID")?;
    }
    for path in &args.wechat_platform_cert_files {
        let cert =
            PlatformCertificate::parse(&read_key_file(path, "BILLING_WECHAT_PLATFORM_CERT_FILES")?)
                .with_context(|| {
                    format!("{} is not a usable platform certificate", path.display())
                })?;
        keys.add_platform_certificate(&cert)
            .context("BILLING_WECHAT_PLATFORM_CERT_FILES")?;
    }
    let config = WechatConfig {
        mch_id: mch_id.clone(),
        app_id: app_id.clone(),
        signer: MerchantSigner::new(mch_id, serial, private_key)
            .context("BILLING_WECHAT_MCH_SERIAL_NO")?,
        keys,
        public_key_id: args.wechat_public_key_id.clone(),
        api_v3_key,
        base_url: args.wechat_base_url.trim_end_matches('/').to_owned(),
        notify_url: notify_url.clone(),
    };
    Ok(Channel::Enabled(Arc::new(WechatClient::new(
        config,
        http.clone(),
    ))))
}

/// Key material for the sandbox: PEMs to load (fast, for tests) or `None` to generate.
#[derive(Debug, Clone, Default)]
pub struct SandboxKeys {
    pub merchant_pem: Option<String>,
    pub gateway_pem: Option<String>,
    /// Notification retry pacing; the simulators' default when `None`.
    pub delivery: Option<crate::sandbox::delivery::DeliveryPolicy>,
}

/// The running simulators; dropping them stops them.
pub struct Sandbox {
    pub alipay: AlipaySimulator,
    pub wechat: WechatSimulator,
}

pub const SANDBOX_ALIPAY_APP_ID: &str = "2021000000000000";
pub const SANDBOX_ALIPAY_SELLER_ID: &str = "2088000000000002";
pub const SANDBOX_WECHAT_MCH_ID: &str = "1900000001";
pub const SANDBOX_WECHAT_APP_ID: &str = "wx0000000000000000";
const SANDBOX_WECHAT_SERIAL: &str = "SANDBOX0000000000000000000000000000000001";
const SANDBOX_APIV3_KEY: &str = "sandboxAPIv3key0123456789abcdefg";

/// Starts both simulators and returns channels wired to them, with webhooks pointed at
/// `http_base` (our own listener, e.g. `http://127.0.0.1:8080`).
pub async fn sandbox(http_base: &str, keys: SandboxKeys) -> anyhow::Result<(Gateways, Sandbox)> {
    let merchant = gateway_keys(keys.merchant_pem.as_deref()).context("sandbox merchant key")?;
    let api_v3_key = ApiV3Key::parse(SANDBOX_APIV3_KEY).context("sandbox APIv3 key")?;
    let mut alipay_config = AlipaySimConfig::new(
        SANDBOX_ALIPAY_APP_ID,
        SANDBOX_ALIPAY_SELLER_ID,
        merchant.public.clone(),
    );
    alipay_config.gateway_key_pem = keys.gateway_pem.clone();
    if let Some(delivery) = keys.delivery {
        alipay_config.delivery = delivery;
    }
    let (alipay_sim, _) = AlipaySimulator::start(alipay_config)
        .await
        .context("starting the Alipay simulator")?;
    let mut wechat_config = WechatSimConfig::new(
        SANDBOX_WECHAT_MCH_ID,
        SANDBOX_WECHAT_APP_ID,
        merchant.public.clone(),
        api_v3_key.clone(),
    );
    wechat_config.gateway_key_pem = keys.gateway_pem;
    if let Some(delivery) = keys.delivery {
        wechat_config.delivery = delivery;
    }
    wechat_config.merchant_serial_no = Some(SANDBOX_WECHAT_SERIAL.into());
    let (wechat_sim, wechat_base) = WechatSimulator::start(wechat_config)
        .await
        .context("starting the WeChat simulator")?;
    let http = crate::gateway::error::http_client()?;
    let alipay = AlipayClient::new(
        AlipayConfig {
            app_id: SANDBOX_ALIPAY_APP_ID.into(),
            seller_id: SANDBOX_ALIPAY_SELLER_ID.into(),
            app_private_key: merchant.private.clone(),
            alipay_public_key: alipay_sim.alipay_public_key(),
            gateway_url: alipay_sim.gateway_url(),
            notify_url: format!("{http_base}/notify/alipay"),
        },
        http.clone(),
    );
    let mut wechat_keys = WechatKeySet::new();
    wechat_keys.add_public_key(wechat_sim.public_key_id(), wechat_sim.wechat_public_key())?;
    let wechat = WechatClient::new(
        WechatConfig {
            mch_id: SANDBOX_WECHAT_MCH_ID.into(),
            app_id: SANDBOX_WECHAT_APP_ID.into(),
            signer: MerchantSigner::new(
                SANDBOX_WECHAT_MCH_ID,
                SANDBOX_WECHAT_SERIAL,
                merchant.private,
            )?,
            keys: wechat_keys,
            public_key_id: Some(wechat_sim.public_key_id().to_owned()),
            api_v3_key,
            base_url: wechat_base,
            notify_url: format!("{http_base}/notify/wechat"),
        },
        http,
    );
    let gateways = Gateways {
        alipay: Channel::Enabled(Arc::new(alipay)),
        wechat: Channel::Enabled(Arc::new(wechat)),
    };
    Ok((
        gateways,
        Sandbox {
            alipay: alipay_sim,
            wechat: wechat_sim,
        },
    ))
}

/// `water-billing sandbox`: both simulators on their own, with fresh keys written to
/// `keys_dir` and a `sandbox.env` holding the settings that point `serve` at them.
pub async fn run_standalone(
    args: &crate::config::SandboxArgs,
) -> anyhow::Result<(Sandbox, std::path::PathBuf)> {
    use rsa::pkcs8::{EncodePrivateKey, EncodePublicKey, LineEnding};
    let merchant = rsa::RsaPrivateKey::new(&mut rand::thread_rng(), 2048)?;
    let merchant_pem = merchant.to_pkcs8_pem(LineEnding::LF)?.to_string();
    let merchant_public =
        PublicKey::parse(&rsa::RsaPublicKey::from(&merchant).to_public_key_pem(LineEnding::LF)?)?;
    let api_v3_key = ApiV3Key::parse(SANDBOX_APIV3_KEY)?;
    let (alipay, _) = AlipaySimulator::start(AlipaySimConfig::new(
        SANDBOX_ALIPAY_APP_ID,
        SANDBOX_ALIPAY_SELLER_ID,
        merchant_public.clone(),
    ))
    .await?;
    let mut wechat_config = WechatSimConfig::new(
        SANDBOX_WECHAT_MCH_ID,
        SANDBOX_WECHAT_APP_ID,
        merchant_public,
        api_v3_key,
    );
    wechat_config.merchant_serial_no = Some(SANDBOX_WECHAT_SERIAL.into());
    let (wechat, wechat_base) = WechatSimulator::start(wechat_config).await?;
    let dir = &args.keys_dir;
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let write = |name: &str, text: &str| -> anyhow::Result<std::path::PathBuf> {
        let path = dir.join(name);
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
        Ok(path)
    };
    let merchant_key = write("merchant_private_key.pem", &merchant_pem)?;
    let alipay_public = write(
        "alipay_public_key.pem",
        &alipay.alipay_public_key().to_pem()?,
    )?;
    let wechat_public = write(
        "wechat_public_key.pem",
        &wechat.wechat_public_key().to_pem()?,
    )?;
    let v3 = write("apiv3_key.txt", SANDBOX_APIV3_KEY)?;
    let base = args.notify_base.trim_end_matches('/');
    let env = format!(
        "BILLING_ALIPAY_APP_ID={SANDBOX_ALIPAY_APP_ID}\nBILLING_ALIPAY_SELLER_ID={SANDBOX_ALIPAY_SELLER_ID}\n\
         BILLING_ALIPAY_APP_PRIVATE_KEY_FILE={}\nBILLING_ALIPAY_PUBLIC_KEY_FILE={}\nBILLING_ALIPAY_GATEWAY_URL={}\n\
         BILLING_ALIPAY_NOTIFY_URL={base}/notify/alipay\nBILLING_WECHAT_MCH_ID={SANDBOX_WECHAT_MCH_ID}\n\
         BILLING_WECHAT_APP_ID={SANDBOX_WECHAT_APP_ID}\nBILLING_WECHAT_MCH_PRIVATE_KEY_FILE={}\n\
         BILLING_WECHAT_MCH_SERIAL_NO={SANDBOX_WECHAT_SERIAL}\nBILLING_WECHAT_APIV3_KEY_FILE={}\n\
         BILLING_WECHAT_PUBLIC_KEY_FILE={}\nBILLING_WECHAT_PUBLIC_KEY_ID={}\nBILLING_WECHAT_BASE_URL={wechat_base}\n\
         BILLING_WECHAT_NOTIFY_URL={base}/notify/wechat\n",
        merchant_key.display(),
        alipay_public.display(),
        alipay.gateway_url(),
        merchant_key.display(),
        v3.display(),
        wechat_public.display(),
        wechat.public_key_id(),
    );
    let env_path = write("sandbox.env", &env)?;
    Ok((Sandbox { alipay, wechat }, env_path))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn alipay_args(dir: &Path, private_key: &str) -> AlipayArgs {
        let key_path = dir.join("app_key.pem");
        std::fs::write(&key_path, private_key).unwrap();
        let public_path = dir.join("alipay_public.pem");
        let fixture = format!(
            "{}/tests/fixtures/gateway/gateway_spki.pem",
            env!("CARGO_MANIFEST_DIR")
        );
        std::fs::copy(fixture, &public_path).unwrap();
        AlipayArgs {
            alipay_app_id: Some("2021000000000000".into()),
            alipay_seller_id: Some("2088000000000002".into()),
            alipay_app_private_key_file: Some(key_path),
            alipay_public_key_file: Some(public_path),
            alipay_gateway_url: "https://openapi.alipay.com/gateway.do".into(),
            alipay_notify_url: Some("https://pay.example.com/notify/alipay".into()),
        }
    }

    #[test]
    fn a_channel_with_missing_settings_is_disabled_and_names_them() {
        let gateways =
            Gateways::from_config(&AlipayArgs::default(), &WechatArgs::default()).unwrap();
        let why = gateways.alipay.enabled().unwrap_err();
        assert!(
            why.contains("BILLING_ALIPAY_APP_ID") && why.contains("BILLING_ALIPAY_NOTIFY_URL"),
            "{why}"
        );
        let why = gateways.wechat.enabled().unwrap_err();
        assert!(
            why.contains("BILLING_WECHAT_MCH_ID") && why.contains("BILLING_WECHAT_PUBLIC_KEY_FILE"),
            "{why}"
        );
    }

    #[test]
    fn a_malformed_key_stops_start_up_with_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let args = alipay_args(
            dir.path(),
            "-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----\n",
        );
        let err = Gateways::from_config(&args, &WechatArgs::default()).unwrap_err();
        let message = format!("{err:#}");
        assert!(
            message.contains("BILLING_ALIPAY_APP_PRIVATE_KEY_FILE"),
            "{message}"
        );
        assert!(
            !message.contains("not a key"),
            "key material never appears in errors: {message}"
        );
    }

    #[test]
    fn a_complete_channel_is_enabled() {
        let dir = tempfile::tempdir().unwrap();
        let key = std::fs::read_to_string(format!(
            "{}/tests/fixtures/gateway/merchant_pkcs8.pem",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap();
        let gateways =
            Gateways::from_config(&alipay_args(dir.path(), &key), &WechatArgs::default()).unwrap();
        assert!(gateways.alipay.enabled().is_ok());
    }
}

//! The server itself: health over HTTP, gRPC health and reflection.

use crate::helpers::spawn_app;

#[tokio::test]
async fn healthz_answers_200_when_the_database_is_reachable() {
    let app = spawn_app().await;
    let mut stream = tokio::net::TcpStream::connect(app.http_addr).await.unwrap();
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
}

#[tokio::test]
async fn grpc_health_reports_the_billing_service_as_serving() {
    let app = spawn_app().await;
    let channel = tonic::transport::Channel::from_shared(format!("http://{}", app.grpc_addr))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut health = tonic_health::pb::health_client::HealthClient::new(channel);
    let response = health
        .check(tonic_health::pb::HealthCheckRequest {
            service: "waterbilling.v1.BillingService".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        response.status,
        tonic_health::pb::health_check_response::ServingStatus::Serving as i32
    );
}

#[tokio::test]
async fn reflection_lists_the_api_services() {
    use tonic_reflection::pb::v1::ServerReflectionRequest;
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
    let app = spawn_app().await;
    let channel = tonic::transport::Channel::from_shared(format!("http://{}", app.grpc_addr))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut client = ServerReflectionClient::new(channel);
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut responses = client
        .server_reflection_info(tokio_stream::iter(vec![request]))
        .await
        .unwrap()
        .into_inner();
    let response = responses.message().await.unwrap().unwrap();
    let Some(MessageResponse::ListServicesResponse(list)) = response.message_response else {
        panic!("no service list")
    };
    let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    for expected in [
        "waterbilling.v1.AccountService",
        "waterbilling.v1.BillingService",
        "waterbilling.v1.TariffService",
        "waterbilling.v1.ClosureService",
    ] {
        assert!(
            names.iter().any(|n| n == expected),
            "{expected} missing from {names:?}"
        );
    }
}

#[tokio::test]
async fn migrations_can_run_again_on_a_migrated_database() {
    let app = spawn_app().await;
    let db = water_billing::db::connect(&water_billing::config::DatabaseConfig::new(
        app.database_url.clone(),
    ))
    .await
    .unwrap();
    water_billing::db::migrate(&db).await.unwrap();
    water_billing::db::migrate(&db).await.unwrap();
}

#[tokio::test]
async fn the_standalone_sandbox_writes_settings_that_enable_both_channels() {
    use std::collections::HashMap;
    use water_billing::app::gateways::Gateways;
    use water_billing::config::{AlipayArgs, SandboxArgs, WechatArgs};
    use water_billing::startup::gateways::run_standalone;
    let dir = tempfile::tempdir().unwrap();
    let args = SandboxArgs {
        keys_dir: dir.path().join("keys"),
        notify_base: "http://127.0.0.1:9".into(),
    };
    let (sandbox, env_path) = run_standalone(&args).await.unwrap();
    let env: HashMap<String, String> = std::fs::read_to_string(&env_path)
        .unwrap()
        .lines()
        .filter_map(|line| {
            line.split_once('=')
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
        })
        .collect();
    let get = |name: &str| env.get(name).cloned();
    let alipay = AlipayArgs {
        alipay_app_id: get("BILLING_ALIPAY_APP_ID"),
        alipay_seller_id: get("BILLING_ALIPAY_SELLER_ID"),
        alipay_app_private_key_file: get("BILLING_ALIPAY_APP_PRIVATE_KEY_FILE").map(Into::into),
        alipay_public_key_file: get("BILLING_ALIPAY_PUBLIC_KEY_FILE").map(Into::into),
        alipay_gateway_url: get("BILLING_ALIPAY_GATEWAY_URL").unwrap(),
        alipay_notify_url: get("BILLING_ALIPAY_NOTIFY_URL"),
    };
    let wechat = WechatArgs {
        wechat_mch_id: get("BILLING_WECHAT_MCH_ID"),
        wechat_app_id: get("BILLING_WECHAT_APP_ID"),
        wechat_mch_private_key_file: get("BILLING_WECHAT_MCH_PRIVATE_KEY_FILE").map(Into::into),
        wechat_mch_serial_no: get("BILLING_WECHAT_MCH_SERIAL_NO"),
        wechat_apiv3_key_file: get("BILLING_WECHAT_APIV3_KEY_FILE").map(Into::into),
        wechat_public_key_file: get("BILLING_WECHAT_PUBLIC_KEY_FILE").map(Into::into),
        wechat_public_key_id: get("BILLING_WECHAT_PUBLIC_KEY_ID"),
        wechat_platform_cert_files: Vec::new(),
        wechat_base_url: get("BILLING_WECHAT_BASE_URL").unwrap(),
        wechat_notify_url: get("BILLING_WECHAT_NOTIFY_URL"),
    };
    let gateways = Gateways::from_config(&alipay, &wechat).unwrap();
    let now = chrono::Utc::now();
    let alipay = gateways.alipay.enabled().unwrap();
    let qr = alipay
        .precreate("WBSANDBOXTEST0001", 1234, "water", "30m", now)
        .await
        .unwrap();
    assert!(!qr.is_empty());
    let wechat = gateways.wechat.enabled().unwrap();
    let expire =
        (now + chrono::Duration::hours(1)).with_timezone(&water_billing::gateway::beijing::BEIJING);
    let code_url = wechat
        .native_prepay("WBSANDBOXTEST0002", "water", 1234, expire, now)
        .await
        .unwrap();
    assert!(code_url.starts_with("weixin://"), "{code_url}");
    drop(sandbox);
}

#[tokio::test]
async fn the_demo_runs_end_to_end_and_writes_its_reports() {
    let dir = tempfile::tempdir().unwrap();
    let args = water_billing::demo::DemoArgs {
        accounts: 8,
        report_dir: Some(dir.path().to_owned()),
    };
    water_billing::demo::run(args).await.unwrap();
    let reports: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    for prefix in [
        "reconciliation-alipay-",
        "reconciliation-wechat-",
        "reconciliation-counter-",
    ] {
        assert!(
            reports.iter().any(|name| name.starts_with(prefix)),
            "{prefix} missing from {reports:?}"
        );
    }
}

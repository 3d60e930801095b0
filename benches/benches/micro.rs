//! Criterion micro-benchmarks: request signing, parsing 1,000-VM list answers, and
//! rendering the overlay and bootstrap files of a 2,000-node cluster.
//!
//! `cargo bench -p intercloud-benches --bench micro` (or `scripts/bench.sh`).
//!
//! CloudStack's response model is private to its crate, so its parsing is measured
//! through `list_vms` against a local wiremock server (HTTP on loopback included);
//! EC2 and OpenNebula parse through their public `xml`/`model`/`xmlrpc` functions.

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_main, Criterion, Throughput};
use intercloud_benches::{bodies, overlay};
use intercloud_cloudstack::sign::{signature, wire_query};
use intercloud_cloudstack::{CloudStackBuilder, SignatureAlgorithm};
use intercloud_core::bootstrap::{core_site_xml, hadoop_workers, hosts_file, rack_script};
use intercloud_core::{CloudProvider, Credentials, SiteId, VmFilter};
use intercloud_ec2::sigv4::{self, AwsCredentials, Scope, SignableRequest};
use intercloud_opennebula::xmlrpc::{decode_response, Response, Value as Rpc};
use secrecy::SecretString;
use wiremock::matchers::query_param;
use wiremock::{Mock, MockServer, ResponseTemplate};

const VMS: usize = 1_000;
const NODES: usize = 2_000;

fn quick(c: &mut Criterion) -> criterion::BenchmarkGroup<'_, criterion::measurement::WallTime> {
    let mut g = c.benchmark_group("micro");
    g.sample_size(20)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(2));
    g
}

fn deploy_params() -> Vec<(String, String)> {
    [
        ("command", "deployVirtualMachine"),
        ("response", "json"),
        ("apiKey", "hokkaido-api-key"),
        ("serviceofferingid", "c6f99499-7f59-4138-9427-a09db13af2bc"),
        ("templateid", "7d5ec1ae-0c23-4c9b-8d31-4c3ce8c3b5e0"),
        ("zoneid", "1128bd56-b4d9-4ac6-a7b9-c715b187ce11"),
        ("name", "hadoop-demo-worker-17"),
        ("displayname", "hadoop-demo-worker-17"),
        ("userdata", &"I2Nsb3VkLWNvbmZpZwo".repeat(40)),
    ]
    .iter()
    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
    .collect()
}

fn signing(c: &mut Criterion) {
    let mut g = quick(c);
    let params = deploy_params();
    g.bench_function("cloudstack_sign_deploy", |b| {
        b.iter(|| {
            let sig = signature(
                black_box(&params),
                b"hokkaido-secret-key",
                SignatureAlgorithm::HmacSha1,
            );
            wire_query(&params, &sig)
        })
    });

    let creds = AwsCredentials::new(
        "AKIDTOKYOEXAMPLE",
        SecretString::from("tokyo-secret-access-key"),
        None,
    );
    let scope = Scope {
        region: "ap-northeast-1",
        service: "ec2",
    };
    let time = time::macros::datetime!(2026-11-25 18:00:00 UTC);
    let body = "Action=DescribeInstances&Version=2016-11-15&Filter.1.Name=tag%3Aintercloud-cluster\
                &Filter.1.Value.1=hadoop-demo&Filter.2.Name=instance-state-name\
                &Filter.2.Value.1=pending&Filter.2.Value.2=running";
    let headers = vec![
        (
            "Host".to_owned(),
            "ec2.ap-northeast-1.amazonaws.com".to_owned(),
        ),
        (
            "Content-Type".to_owned(),
            "application/x-www-form-urlencoded; charset=utf-8".to_owned(),
        ),
    ];
    g.bench_function("sigv4_sign_describe_instances", |b| {
        b.iter(|| {
            sigv4::sign_headers(
                &creds,
                &scope,
                time,
                black_box(&SignableRequest {
                    method: "POST",
                    path: "/",
                    query: &[],
                    headers: &headers,
                    payload: body.as_bytes(),
                }),
            )
        })
    });
    g.finish();
}

fn parsing(c: &mut Criterion) {
    let mut g = quick(c);
    g.throughput(Throughput::Elements(VMS as u64));

    let ec2 = bodies::ec2_describe_instances(VMS);
    let tokyo = SiteId::new("tokyo");
    g.bench_function("ec2_parse_describe_instances_1000", |b| {
        b.iter(|| {
            let root = intercloud_ec2::xml::parse(black_box(&ec2)).expect("xml");
            let (instances, _) = intercloud_ec2::model::describe_instances(&root).expect("parse");
            let vms: Vec<_> = instances.iter().map(|i| i.to_vm(&tokyo)).collect();
            assert_eq!(vms.len(), VMS);
            vms
        })
    });

    let one = bodies::opennebula_vmpool(VMS);
    let nii = SiteId::new("nii");
    g.bench_function("opennebula_parse_vmpool_infoextended_1000", |b| {
        b.iter(|| {
            let Ok(Response::Success(Rpc::Array(items))) = decode_response(black_box(&one)) else {
                panic!("bad xml-rpc answer");
            };
            let Some(Rpc::String(pool)) = items.get(1) else {
                panic!("no pool string");
            };
            let vms: Vec<_> = intercloud_opennebula::model::parse_vm_pool(pool)
                .expect("pool")
                .iter()
                .map(|v| v.to_vm(&nii))
                .collect();
            assert_eq!(vms.len(), VMS);
            vms
        })
    });

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let (_server, provider) = rt.block_on(async {
        let server = MockServer::start().await;
        Mock::given(query_param("command", "listZones"))
            .respond_with(
                ResponseTemplate::new(200)
                    .set_body_raw(bodies::cloudstack_zones(), "application/json"),
            )
            .mount(&server)
            .await;
        Mock::given(query_param("command", "listVirtualMachines"))
            .respond_with(
                ResponseTemplate::new(200)
                    .set_body_raw(bodies::cloudstack_list_vms(VMS), "application/json"),
            )
            .mount(&server)
            .await;
        let provider = CloudStackBuilder::new()
            .site("hokkaido")
            .endpoint(format!("{}/client/api", server.uri()))
            .credentials(Credentials::cloudstack("bench-key", "bench-secret"))
            .zone(bodies::CLOUDSTACK_ZONE)
            .page_size(VMS as u32)
            .build()
            .expect("provider");
        (server, provider)
    });
    let filter = VmFilter::cluster(bodies::CLUSTER);
    g.bench_function("cloudstack_list_vms_1000_via_loopback_http", |b| {
        b.iter(|| {
            let vms = rt.block_on(provider.list_vms(&filter)).expect("list");
            assert_eq!(vms.len(), VMS);
            vms
        })
    });
    g.finish();
}

fn rendering(c: &mut Criterion) {
    let mut g = quick(c);
    g.throughput(Throughput::Elements(NODES as u64));
    let mesh = overlay::mesh(NODES, 4).expect("mesh");
    let sites = overlay::site_ids(4);
    let names: Vec<String> = (0..NODES).map(overlay::node_name).collect();
    g.bench_function("wireguard_configs_2000_nodes_4_sites", |b| {
        b.iter(|| {
            let mut bytes = 0;
            for s in &sites {
                bytes += mesh.gateway_config(s).expect("gateway").len();
            }
            for n in &names {
                bytes += mesh.member_config(n).expect("member").len();
            }
            bytes
        })
    });
    let layout = overlay::layout(&mesh, NODES).expect("layout");
    g.bench_function("bootstrap_hosts_hadoop_files_2000_nodes", |b| {
        b.iter(|| {
            let l = black_box(&layout);
            hosts_file(l).len()
                + hadoop_workers(l).len()
                + core_site_xml(l).len()
                + rack_script(l).len()
        })
    });
    g.bench_function("mesh_build_2000_nodes_keys_included", |b| {
        b.iter(|| overlay::mesh(NODES, 4).expect("mesh"))
    });
    g.finish();
}

// `criterion_group!` defines an undocumented `pub fn benches`.
#[allow(missing_docs)]
mod group {
    use super::{parsing, rendering, signing};
    criterion::criterion_group!(benches, signing, parsing, rendering);
}
use group::benches;
criterion_main!(benches);

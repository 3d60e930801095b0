//! How long one poll's decoding takes: a `one.vmpool.infoextended` answer of N VMs
//! (each the documentation's full VM document plus intercloud's four tags) decoded
//! twice (XML-RPC, then the pool) and turned into core VMs.
//!
//! `cargo bench -p intercloud-opennebula --bench decode`

#![allow(missing_docs)]

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use intercloud_core::SiteId;
use intercloud_opennebula::model::parse_vm_pool;
use intercloud_opennebula::xmlrpc::{decode_response, encode_call, Response, Value};

const VM: &str = include_str!("../tests/fixtures/docs-examples/vm-active-lcm69-backup.xml");

fn pool_answer(n: usize) -> String {
    let mut pool = String::from("<VM_POOL>");
    for i in 0..n {
        let vm = VM
            .replace("<ID>800</ID>", &format!("<ID>{i}</ID>"))
            .replace(
                "<USER_TEMPLATE>",
                &format!(
                    "<USER_TEMPLATE><INTERCLOUD_CLUSTER><![CDATA[bench]]></INTERCLOUD_CLUSTER>\
                     <INTERCLOUD_INDEX><![CDATA[{i}]]></INTERCLOUD_INDEX>\
                     <INTERCLOUD_KEY><![CDATA[bench-key]]></INTERCLOUD_KEY>\
                     <INTERCLOUD_ROLE><![CDATA[worker]]></INTERCLOUD_ROLE>"
                ),
            );
        pool.push_str(&vm);
    }
    pool.push_str("</VM_POOL>");
    let escaped = pool
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;");
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\r\n<methodResponse>\r\n<params>\r\n<param><value><array><data>\r\n\
         <value><boolean>1</boolean></value>\r\n<value><string>{escaped}</string></value>\r\n\
         <value><i4>0</i4></value>\r\n</data></array></value></param>\r\n</params>\r\n</methodResponse>\r\n"
    )
}

fn decode_poll(c: &mut Criterion) {
    let site = SiteId::new("bench");
    let mut group = c.benchmark_group("vmpool_infoextended_decode");
    group.sample_size(10);
    for n in [100usize, 2000] {
        let body = pool_answer(n);
        group.throughput(Throughput::Bytes(body.len() as u64));
        group.bench_with_input(BenchmarkId::from_parameter(n), &body, |b, body| {
            b.iter(|| {
                let Ok(Response::Success(Value::Array(items))) = decode_response(body) else {
                    panic!("bench answer decodes")
                };
                let Some(Value::String(doc)) = items.get(1) else {
                    panic!("a string")
                };
                let vms: Vec<_> = parse_vm_pool(doc)
                    .expect("pool")
                    .iter()
                    .map(|v| v.to_vm(&site))
                    .collect();
                assert_eq!(vms.len(), n);
                vms
            })
        });
    }
    group.finish();
}

fn encode_instantiate(c: &mut Criterion) {
    let extra = "CONTEXT=[NETWORK=\"YES\",USER_DATA=\"".to_owned() + &"QUJD".repeat(4096) + "\"]";
    c.bench_function("encode_template_instantiate_16KiB", |b| {
        b.iter(|| {
            encode_call(
                "one.template.instantiate",
                &[
                    Value::string("oneadmin:opennebula"),
                    Value::Int(7),
                    Value::string("vm-a"),
                    Value::Bool(false),
                    Value::string(extra.clone()),
                    Value::Bool(false),
                ],
            )
            .expect("encodes")
        })
    });
}

criterion_group!(benches, decode_poll, encode_instantiate);
criterion_main!(benches);

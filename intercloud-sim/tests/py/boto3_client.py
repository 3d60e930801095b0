"""Drives the simulated EC2 site with boto3.

argv: endpoint region access_key secret_key. Prints OK on success; any failure raises.
"""
import sys
import time

import boto3
from botocore.exceptions import ClientError

endpoint, region, key, secret = sys.argv[1:5]


def client(secret_key):
    return boto3.client("ec2", endpoint_url=endpoint, region_name=region,
                        aws_access_key_id=key, aws_secret_access_key=secret_key)


ec2 = client(secret)
ami = ec2.describe_images()["Images"][0]["ImageId"]
types = [t["InstanceType"] for t in ec2.describe_instance_types()["InstanceTypes"]]
assert "t3.small" in types, types
tags = [{"ResourceType": "instance", "Tags": [{"Key": "intercloud-cluster", "Value": "py ec2"}]}]
run = dict(ImageId=ami, InstanceType="t3.small", MinCount=2, MaxCount=2, ClientToken="py-token-1", TagSpecifications=tags)
ids = sorted(i["InstanceId"] for i in ec2.run_instances(**run)["Instances"])
again = sorted(i["InstanceId"] for i in ec2.run_instances(**run)["Instances"])
assert ids == again, (ids, again)

flt = [{"Name": "tag:intercloud-cluster", "Values": ["py ec2"]}, {"Name": "instance-state-name", "Values": ["running"]}]
deadline = time.time() + 20
while True:
    pages = ec2.get_paginator("describe_instances").paginate(Filters=flt, PaginationConfig={"PageSize": 5})
    running = sorted(i["InstanceId"] for p in pages for r in p["Reservations"] for i in r["Instances"])
    if running == ids:
        break
    assert time.time() < deadline, running
    time.sleep(0.02)

try:
    client("wrong-secret").describe_instances()
    raise AssertionError("a wrong secret must be refused")
except ClientError as e:
    assert e.response["Error"]["Code"] == "SignatureDoesNotMatch", e.response

try:
    ec2.run_instances(**dict(run, MinCount=1))
    raise AssertionError("token reuse with other parameters")
except ClientError as e:
    assert e.response["Error"]["Code"] == "IdempotentParameterMismatch", e.response

out = ec2.terminate_instances(InstanceIds=ids)["TerminatingInstances"]
assert {i["CurrentState"]["Name"] for i in out} == {"shutting-down"}, out
left = [i for r in ec2.describe_instances(Filters=flt)["Reservations"] for i in r["Instances"]]
assert left == [], left
print("OK")

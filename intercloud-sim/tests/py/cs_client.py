"""Drives the simulated CloudStack site with the independent `cs` client (exoscale/cs).

argv: endpoint api_key secret_key. Prints OK on success; any failure raises.
"""
import sys

from cs import CloudStack, CloudStackApiException

endpoint, key, secret = sys.argv[1:4]
api = CloudStack(endpoint=endpoint, key=key, secret=secret, poll_interval=0.02, timeout=30)

zone = api.listZones()["zone"][0]["id"]
offering = [o for o in api.listServiceOfferings()["serviceoffering"] if o["name"] == "Small Instance"][0]["id"]
template = api.listTemplates(templatefilter="executable")["template"][0]["id"]

jobs = []
for i in range(2):
    r = api.deployVirtualMachine(zoneid=zone, serviceofferingid=offering, templateid=template, name=f"py-{i}", method="post")
    api.createTags(resourceids=r["id"], resourcetype="UserVm", tags=[{"key": "intercloud-cluster", "value": "py cs"}], fetch_result=True)
    jobs.append(r["jobid"])
vms = [api._jobresult(j)["virtualmachine"] for j in jobs]
assert all(v["state"] == "Running" for v in vms), vms

listed = api.listVirtualMachines(tags=[{"key": "intercloud-cluster", "value": "py cs"}], listall=True, fetch_list=True)
assert sorted(v["id"] for v in listed) == sorted(v["id"] for v in vms), listed
assert all(t["key"] == "intercloud-cluster" for v in listed for t in v["tags"])

try:
    CloudStack(endpoint=endpoint, key=key, secret="wrong-secret").listZones()
    raise AssertionError("a wrong secret must be refused")
except CloudStackApiException as e:
    assert e.error["errorcode"] == 401, e.error
    assert e.error["errortext"] == "unable to verify user credentials and/or request signature"

for v in vms:
    res = api.destroyVirtualMachine(id=v["id"], expunge=True, fetch_result=True)
    assert res["virtualmachine"]["state"] == "Destroyed", res

left = api.listVirtualMachines(tags=[{"key": "intercloud-cluster", "value": "py cs"}], listall=True, fetch_list=True)
assert left == [], left
print("OK")

"""Drives the simulated OpenNebula site with the official `pyone` client.

argv: endpoint session. Prints OK on success; any failure raises.
"""
import sys
import time

import pyone

endpoint, session = sys.argv[1:3]
one = pyone.OneServer(endpoint, session=session)

assert one.system.version()
tmpl = one.templatepool.info(-2, -1, -1).VMTEMPLATE[0]
ids = []
for i in range(2):
    extra = 'CONTEXT=[NETWORK="YES",USER_DATA="I2Nsb3VkLWNvbmZpZwo=",USER_DATA_ENCODING="base64"]\nINTERCLOUD_CLUSTER="py-one"\n'
    ids.append(one.template.instantiate(tmpl.ID, f"py-{i}", False, extra, False))


def tagged():
    pool = one.vmpool.infoextended(-2, -1, -1, -1)
    return [vm for vm in pool.VM if vm.USER_TEMPLATE.get("INTERCLOUD_CLUSTER") == "py-one"]


deadline = time.time() + 20
while True:
    vms = tagged()
    if len(vms) == 2 and all(vm.STATE == 3 and vm.LCM_STATE == 3 for vm in vms):
        break
    assert time.time() < deadline, [(vm.ID, vm.STATE, vm.LCM_STATE) for vm in vms]
    time.sleep(0.02)
assert sorted(vm.ID for vm in vms) == sorted(ids)
info = one.vm.info(ids[0])
assert info.TEMPLATE["NIC"]["IP"].startswith("10."), info.TEMPLATE
assert info.TEMPLATE["CONTEXT"]["USER_DATA_ENCODING"] == "base64"

try:
    pyone.OneServer(endpoint, session="oneadmin:wrong").vm.info(ids[0])
    raise AssertionError("a wrong password must be refused")
except pyone.OneAuthenticationException:
    pass
try:
    one.vm.info(999999)
    raise AssertionError("unknown VM")
except pyone.OneNoExistsException:
    pass

for i in ids:
    one.vm.action("terminate-hard", i)
assert tagged() == []
assert one.vm.info(ids[0]).STATE == 6
print("OK")

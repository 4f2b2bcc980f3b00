"""Start moto's server on 127.0.0.1:<port>, patched to behave like real AWS
where this project's validation depends on it.

moto 5.2.5 mints permission set ARNs as arn:aws:sso:::instance/ssoins-../ps-..;
real Identity Center answers arn:aws:sso:::permissionSet/ssoins-../ps-... We
fix moto rather than loosen the product's validation.

MOTO_FIXED_PERMISSION_SETS (optional, comma-separated "ssoins-…=ps-…" pairs)
makes the first permission set created in that instance take that id, so the
seed README's example message (ssoins-12345/ps-12345) works verbatim against
a local stack. moto does not check instance ARNs, so each test picks its own
instance and never meets the fixed one.

moto stores a second, identical row when an assignment that exists is created
again; Identity Center keeps one (the create succeeds and changes nothing).
Grants that join a break-glass assignment create it again to make sure it is
there, so moto is made to keep one row too.
"""

import os
import sys

from moto.moto_api._internal import mock_random as random
from moto.ssoadmin import models as ssoadmin
from moto.ssoadmin.exceptions import ResourceNotFoundException

fixed = dict(
    pair.split("=", 1)
    for pair in os.environ.get("MOTO_FIXED_PERMISSION_SETS", "").split(",")
    if "=" in pair
)


def generate_id(instance_arn: str) -> str:
    base = instance_arn.replace(":instance/", ":permissionSet/", 1)
    instance_id = instance_arn.rsplit("/", 1)[-1]
    if instance_id in fixed:
        return f"{base}/{fixed.pop(instance_id)}"
    return f"{base}/ps-{random.get_random_string(length=16).lower()}"


ssoadmin.PermissionSet.generate_id = staticmethod(generate_id)

_create_account_assignment = ssoadmin.SSOAdminBackend.create_account_assignment


def create_account_assignment(self, *args, **kwargs):
    try:
        existing = self._find_account(*args, **kwargs)
    except ResourceNotFoundException:
        return _create_account_assignment(self, *args, **kwargs)
    return existing.to_json(include_creation_date=True, include_request_id=True)


ssoadmin.SSOAdminBackend.create_account_assignment = create_account_assignment

from moto.server import main  # noqa: E402

if __name__ == "__main__":
    port = sys.argv[1] if len(sys.argv) > 1 else "5000"
    main(["-H", "127.0.0.1", "-p", port])

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
Three more, for `break-glass-local doctor`, which reads what moto answers
differently from AWS:
- moto lets anyone assume any role, existing or not; AWS answers AccessDenied
  for a role that does not exist. Here AssumeRole refuses a role that is not
  in IAM (in the account its ARN names).
- moto provisions a permission set to the caller's account whatever the
  target, and lists it for every account; here each provisioning is kept
  with its target account, and ListPermissionSetsProvisionedToAccount lists
  that account's.
- moto sends from any identity it has (it verifies at once) but reports
  VerifiedForSendingStatus false; here it reports true, as AWS does once an
  identity is verified.
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


# --- AssumeRole: only roles that exist (AWS answers AccessDenied otherwise).
from moto.iam.models import iam_backends  # noqa: E402
from moto.sts import models as sts  # noqa: E402
from moto.sts.exceptions import STSClientError  # noqa: E402

_assume_role = sts.STSBackend.assume_role


def assume_role(self, region_name, role_session_name, role_arn, *args, **kwargs):
    parts = role_arn.split(":")
    account = parts[4] if len(parts) > 5 else self.account_id
    partition = parts[1] if len(parts) > 5 else "aws"
    try:
        iam_backends[account][partition].get_role_by_arn(role_arn)
    except Exception:
        raise STSClientError(
            "AccessDenied",
            f"User: arn:{partition}:iam::{self.account_id}:user/moto is not authorized "
            f"to perform: sts:AssumeRole on resource: {role_arn}",
        )
    return _assume_role(self, region_name, role_session_name, role_arn, *args, **kwargs)


sts.STSBackend.assume_role = assume_role

# --- Permission sets provisioned per target account.
import json  # noqa: E402

from moto.ssoadmin import responses as ssoadmin_responses  # noqa: E402


def _provisioned(backend):
    if not hasattr(backend, "provisioned_to_accounts"):
        backend.provisioned_to_accounts = {}
    return backend.provisioned_to_accounts


def provision_permission_set(self):
    instance_arn = self._get_param("InstanceArn")
    permission_set_arn = self._get_param("PermissionSetArn")
    target = self._get_param("TargetId") or self.current_account
    self.ssoadmin_backend._find_permission_set(instance_arn, permission_set_arn)
    listed = _provisioned(self.ssoadmin_backend).setdefault((instance_arn, target), [])
    if permission_set_arn not in listed:
        listed.append(permission_set_arn)
    return json.dumps(
        {
            "PermissionSetProvisioningStatus": {
                "AccountId": target,
                "PermissionSetArn": permission_set_arn,
                "RequestId": str(random.uuid4()),
                "Status": "SUCCEEDED",
            }
        }
    )


def list_permission_sets_provisioned_to_account(self):
    instance_arn = self._get_param("InstanceArn")
    account = self._get_param("AccountId")
    listed = _provisioned(self.ssoadmin_backend).get((instance_arn, account), [])
    return json.dumps({"PermissionSets": list(listed)})


ssoadmin_responses.SSOAdminResponse.provision_permission_set = provision_permission_set
ssoadmin_responses.SSOAdminResponse.list_permission_sets_provisioned_to_account = (
    list_permission_sets_provisioned_to_account
)

# --- SES: an identity moto sends from is verified for sending.
from moto.ses import models as ses  # noqa: E402

_identity_init = ses.EmailIdentity.__init__


def identity_init(self, *args, **kwargs):
    _identity_init(self, *args, **kwargs)
    self.verified_for_sending_status = True


ses.EmailIdentity.__init__ = identity_init

from moto.server import main  # noqa: E402

if __name__ == "__main__":
    port = sys.argv[1] if len(sys.argv) > 1 else "5000"
    main(["-H", "127.0.0.1", "-p", port])

"""Stand in for the parts of CloudFormation that moto's CloudFormation leaves out.

Moto's CloudFormation skips resource types it does not implement: it logs "No Moto
CloudFormation support for ...", leaves the resource out of the stack and drops every
output that refers to it. For the types below moto's service APIs exist, so after moto
has created or updated a stack, `fill` creates each skipped resource through those APIs,
as CloudFormation would, from the template's own properties resolved against the stack's
parameters and the resources moto did create. It refuses properties and resource types it
does not know, rather than leave them out, and it evaluates the outputs moto dropped.

This proves the template's wiring (which resource names which, and with what), not that
AWS accepts it: cfn-lint checks the properties against CloudFormation's own schemas.
"""

import json
import re
import secrets
import string

PSEUDO_PARAMETERS = ("AWS::StackName", "AWS::Region", "AWS::AccountId", "AWS::Partition")
NO_VALUE = object()
# SES (API v1) event types, which moto's SES does not check.
SES_EVENT_TYPES = {
    "send",
    "reject",
    "bounce",
    "complaint",
    "delivery",
    "open",
    "click",
    "renderingFailure",
    "deliveryDelay",
    "subscription",
}
DYNAMIC_REFERENCE = re.compile(r"\{\{resolve:([a-z-]+):(.+?)\}\}")


class Pending(Exception):
    """The value needs a resource that is not made yet."""


class StackGaps:
    def __init__(self, client, stack_name, template, parameters):
        self.client = client
        self.stack_name = stack_name
        self.template = template
        self.parameters = parameters
        self.made = {}  # logical id -> physical id, for the resources made here
        self.moto_resources = {}  # logical id -> physical id, for those moto made
        self.account = client("sts").get_caller_identity()["Account"]
        self.region = client("sts").meta.region_name

    # ------------------------------------------------------------------ intrinsics
    def parameter(self, name):
        if name == "AWS::StackName":
            return self.stack_name
        if name == "AWS::Region":
            return self.region
        if name == "AWS::AccountId":
            return self.account
        if name == "AWS::Partition":
            return "aws"
        if name == "AWS::NoValue":
            return NO_VALUE
        declared = self.template.get("Parameters", {}).get(name)
        if declared is None:
            return None
        value = self.parameters.get(name, declared.get("Default"))
        if value is None:
            raise SystemExit(f"parameter {name} has no value")
        value = str(value)
        return value.split(",") if declared["Type"].startswith("List<") else value

    def reference(self, name):
        value = self.parameter(name)
        if value is not None:
            return value
        if name in self.made:
            return self.made[name]
        if name in self.moto_resources:
            return self.moto_resources[name]
        if name in self.template["Resources"]:
            raise Pending(name)
        raise SystemExit(f"Ref to {name}, which the template does not declare")

    def condition(self, name):
        return bool(self.evaluate(self.template["Conditions"][name]))

    def evaluate(self, node):
        if isinstance(node, list):
            values = [self.evaluate(item) for item in node]
            return [value for value in values if value is not NO_VALUE]
        if isinstance(node, str):
            return self.dynamic_references(node)
        if not isinstance(node, dict):
            return node
        if len(node) == 1:
            (key, argument), *_ = node.items()
            if key == "Ref":
                return self.reference(argument)
            if key == "Fn::Sub":
                return self.dynamic_references(self.substitute(argument))
            if key == "Fn::Join":
                return argument[0].join(str(item) for item in self.evaluate(argument[1]))
            if key == "Fn::If":
                name, when_true, when_false = argument
                return self.evaluate(when_true if self.condition(name) else when_false)
            if key == "Fn::Equals":
                left, right = self.evaluate(argument)
                return left == right
            if key == "Fn::Not":
                return not self.evaluate(argument[0])
            if key == "Fn::And":
                return all(self.evaluate(argument))
            if key == "Fn::Or":
                return any(self.evaluate(argument))
            if key == "Condition":
                return self.condition(argument)
            if key.startswith("Fn::"):
                raise SystemExit(f"{key} is not handled here: {node}")
        values = {key: self.evaluate(value) for key, value in node.items()}
        return {key: value for key, value in values.items() if value is not NO_VALUE}

    def substitute(self, argument):
        text, variables = (argument, {}) if isinstance(argument, str) else argument

        def replace(match):
            name = match.group(1)
            if name.startswith("!"):
                return "${" + name[1:] + "}"
            if name in variables:
                return str(self.evaluate(variables[name]))
            if "." in name:
                raise SystemExit(f"${{{name}}} (Fn::GetAtt) is not handled here")
            return str(self.reference(name))

        return re.sub(r"\$\{([^}]+)\}", replace, text)

    def dynamic_references(self, text):
        def resolve(match):
            service, reference = match.groups()
            if service != "secretsmanager":
                raise SystemExit(f"dynamic references to {service} are not handled here")
            secret_id, rest = re.fullmatch(
                r"(arn:[^:]+:secretsmanager:[^:]+:[0-9]+:secret:[^:]+|[^:]+)(?::(.*))?",
                reference,
            ).groups()
            secret_type, key = (rest.split(":") + ["", ""])[:2] if rest else ("", "")
            value = self.client("secretsmanager").get_secret_value(SecretId=secret_id)
            string = value["SecretString"]
            if secret_type not in ("", "SecretString"):
                raise SystemExit(f"secret part {secret_type} is not handled here")
            return json.loads(string)[key] if key else string

        return DYNAMIC_REFERENCE.sub(resolve, text)

    # ------------------------------------------------------------------- resources
    def create(self, logical_id, resource):
        kind = resource["Type"]
        creator = CREATORS.get(kind)
        if creator is None:
            raise SystemExit(
                f"moto's CloudFormation skipped {logical_id} ({kind}), "
                "which this check cannot stand in for"
            )
        for dependency in _as_list(resource.get("DependsOn", [])):
            if dependency not in self.made and dependency not in self.moto_resources:
                raise Pending(dependency)
        properties = self.evaluate(resource.get("Properties", {}))
        unknown = set(properties) - creator.properties
        if unknown:
            raise SystemExit(f"{logical_id}: properties not handled here: {sorted(unknown)}")
        self.made[logical_id] = creator(self, logical_id, properties)

    def generated_name(self, logical_id, limit):
        suffix = f"-{logical_id}-" + _random_suffix()
        return f"{self.stack_name[: limit - len(suffix)]}{suffix}"

    def fill(self):
        """Make what moto skipped since the last call (after create-stack, then after each
        update-stack); return {logical id: (type, physical id)} of what it made now."""
        cfn = self.client("cloudformation")
        rows = cfn.describe_stack_resources(StackName=self.stack_name)["StackResources"]
        # Moto lists a skipped resource as a row without a logical id.
        self.moto_resources = {
            row["LogicalResourceId"]: row.get("PhysicalResourceId", "")
            for row in rows
            if row.get("LogicalResourceId")
        }
        wanted = {
            logical_id: resource
            for logical_id, resource in self.template["Resources"].items()
            if "Condition" not in resource or self.condition(resource["Condition"])
        }
        left_out = set(self.made) - set(wanted)
        if left_out:
            raise SystemExit(f"removing {sorted(left_out)} is not handled here")
        to_make = [
            logical_id
            for logical_id in wanted
            if logical_id not in self.moto_resources and logical_id not in self.made
        ]
        newly_made = []
        while to_make:
            waiting = []
            for logical_id in to_make:
                try:
                    self.create(logical_id, wanted[logical_id])
                except Pending:
                    waiting.append(logical_id)
                else:
                    newly_made.append(logical_id)
            if len(waiting) == len(to_make):
                raise SystemExit(f"cannot order {waiting}: a reference or DependsOn loops")
            to_make = waiting
        return {name: (wanted[name]["Type"], self.made[name]) for name in newly_made}

    def outputs(self):
        """The stack's outputs, with those that moto dropped evaluated here."""
        cfn = self.client("cloudformation")
        stack = cfn.describe_stacks(StackName=self.stack_name)["Stacks"][0]
        values = {output["OutputKey"]: output["OutputValue"] for output in stack["Outputs"]}
        for key, output in self.template.get("Outputs", {}).items():
            if key in values:
                continue
            if "Condition" in output and not self.condition(output["Condition"]):
                continue
            values[key] = self.evaluate(output["Value"])
        return values


def _as_list(value):
    return value if isinstance(value, list) else [value]


def _random_suffix():
    alphabet = string.ascii_uppercase + string.digits
    return "".join(secrets.choice(alphabet) for _ in range(12))


def _properties(*names):
    def decorate(function):
        function.properties = set(names)
        return function

    return decorate


@_properties("Name", "Description", "GenerateSecretString", "SecretString")
def _secret(gaps, logical_id, properties):
    manager = gaps.client("secretsmanager")
    if "SecretString" in properties:
        value = properties["SecretString"]
    else:
        generate = dict(properties["GenerateSecretString"])
        template = generate.pop("SecretStringTemplate", None)
        key = generate.pop("GenerateStringKey", None)
        if (template is None) != (key is None):
            raise SystemExit(
                f"{logical_id}: SecretStringTemplate and GenerateStringKey go together"
            )
        allowed = {
            "PasswordLength",
            "ExcludeCharacters",
            "ExcludeNumbers",
            "ExcludePunctuation",
            "ExcludeUppercase",
            "ExcludeLowercase",
            "IncludeSpace",
            "RequireEachIncludedType",
        }
        if set(generate) - allowed:
            raise SystemExit(f"{logical_id}: not handled here: {sorted(set(generate) - allowed)}")
        password = manager.get_random_password(**generate)["RandomPassword"]
        value = json.dumps({**json.loads(template), key: password}) if template else password
    name = properties.get("Name") or gaps.generated_name(logical_id, 256)
    extra = {"Description": properties["Description"]} if "Description" in properties else {}
    return manager.create_secret(Name=name, SecretString=value, **extra)["ARN"]


@_properties("Topics", "PolicyDocument")
def _topic_policy(gaps, logical_id, properties):
    sns = gaps.client("sns")
    for topic in properties["Topics"]:
        sns.set_topic_attributes(
            TopicArn=topic,
            AttributeName="Policy",
            AttributeValue=json.dumps(properties["PolicyDocument"]),
        )
    return gaps.generated_name(logical_id, 128)


@_properties("Name")
def _configuration_set(gaps, logical_id, properties):
    name = properties.get("Name") or gaps.generated_name(logical_id, 64)
    gaps.client("ses").create_configuration_set(ConfigurationSet={"Name": name})
    return name


@_properties("ConfigurationSetName", "EventDestination")
def _event_destination(gaps, logical_id, properties):
    destination = dict(properties["EventDestination"])
    kinds = set(destination) - {"Name", "Enabled", "MatchingEventTypes", "SnsDestination"}
    if kinds:
        raise SystemExit(f"{logical_id}: destinations not handled here: {sorted(kinds)}")
    unknown_events = set(destination["MatchingEventTypes"]) - SES_EVENT_TYPES
    if unknown_events:
        raise SystemExit(f"{logical_id}: SES has no event types {sorted(unknown_events)}")
    name = destination.get("Name") or gaps.generated_name(logical_id, 64)
    request = {
        "Name": name,
        # As in CloudFormation (and the SES API), a destination is off unless enabled.
        "Enabled": bool(destination.get("Enabled", False)),
        "MatchingEventTypes": destination["MatchingEventTypes"],
    }
    if "SnsDestination" in destination:
        topic_arn = destination["SnsDestination"]["TopicARN"]
        gaps.client("sns").get_topic_attributes(TopicArn=topic_arn)  # it must exist
        request["SNSDestination"] = {"TopicARN": topic_arn}
    gaps.client("ses").create_configuration_set_event_destination(
        ConfigurationSetName=properties["ConfigurationSetName"], EventDestination=request
    )
    return f"{properties['ConfigurationSetName']}|{name}"


@_properties("TopicArn", "Protocol", "Endpoint", "RawMessageDelivery", "DeliveryPolicy")
def _subscription(gaps, logical_id, properties):
    attributes = {}
    if "RawMessageDelivery" in properties:
        attributes["RawMessageDelivery"] = str(properties["RawMessageDelivery"]).lower()
    if "DeliveryPolicy" in properties:
        policy = properties["DeliveryPolicy"]
        attributes["DeliveryPolicy"] = policy if isinstance(policy, str) else json.dumps(policy)
    return gaps.client("sns").subscribe(
        TopicArn=properties["TopicArn"],
        Protocol=properties["Protocol"],
        Endpoint=properties["Endpoint"],
        Attributes=attributes,
        ReturnSubscriptionArn=True,
    )["SubscriptionArn"]


CREATORS = {
    "AWS::SecretsManager::Secret": _secret,
    "AWS::SNS::TopicPolicy": _topic_policy,
    "AWS::SES::ConfigurationSet": _configuration_set,
    "AWS::SES::ConfigurationSetEventDestination": _event_destination,
    "AWS::SNS::Subscription": _subscription,
}

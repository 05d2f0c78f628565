"""Resolving intrinsics and physical names the way CloudFormation would in a given account and region."""

from __future__ import annotations

import re

import pytest

from tests.infra.access.deployment import Deployment, Environment, TemplateError, TemplateStack

ACCOUNT = "111122223333"
OTHER_ACCOUNT = "444455556666"
REGION = "eu-west-1"
HERE = Environment(ACCOUNT, REGION)


def deploy(*stacks: tuple[TemplateStack, Environment], parameters=None) -> Deployment:
    return Deployment(stacks, parameters)


def one_stack(resources=None, environment=HERE, **sections) -> Deployment:
    template = {"Resources": resources or {}, **sections}
    return deploy((TemplateStack("Test", template, stack_name="test-stack"), environment))


def resolve(value, **sections):
    return one_stack(**sections).stack("Test").resolve(value)


def test_pseudo_parameters_are_those_of_the_stack_environment():
    deployment = one_stack(environment=Environment(ACCOUNT, "cn-north-1", "aws-cn"))
    stack = deployment.stack("Test")

    assert stack.resolve({"Ref": "AWS::AccountId"}) == ACCOUNT
    assert stack.resolve({"Ref": "AWS::Region"}) == "cn-north-1"
    assert stack.resolve({"Ref": "AWS::Partition"}) == "aws-cn"
    assert stack.resolve({"Ref": "AWS::URLSuffix"}) == "amazonaws.com.cn"
    assert stack.resolve({"Ref": "AWS::StackName"}) == "test-stack"
    assert stack.resolve({"Ref": "AWS::StackId"}).startswith(
        f"arn:aws-cn:cloudformation:cn-north-1:{ACCOUNT}:stack/test-stack/"
    )


def test_a_named_role_has_its_name_and_path_in_its_arn():
    resources = {"Role": {"Type": "AWS::IAM::Role", "Properties": {"RoleName": "ops", "Path": "/team/"}}}
    stack = one_stack(resources).stack("Test")

    assert stack.resolve({"Ref": "Role"}) == "ops"
    assert stack.resolve({"Fn::GetAtt": ["Role", "Arn"]}) == f"arn:aws:iam::{ACCOUNT}:role/team/ops"
    assert stack.resolve({"Fn::GetAtt": "Role.Arn"}) == f"arn:aws:iam::{ACCOUNT}:role/team/ops"


def test_unnamed_resources_get_deterministic_names_from_stack_and_logical_id():
    resources = {"Role": {"Type": "AWS::IAM::Role"}, "Bucket": {"Type": "AWS::S3::Bucket"}}

    def names(environment):
        stack = one_stack(resources, environment).stack("Test")
        return stack.resolve({"Ref": "Role"}), stack.resolve({"Ref": "Bucket"})

    role, bucket = names(HERE)
    assert role.startswith("test-stack-Role-") and len(role) <= 64
    # S3 names are global and lower case: another account gets another bucket name.
    assert bucket.startswith("test-stack-bucket-") and bucket == bucket.lower() and len(bucket) <= 63
    assert names(HERE) == (role, bucket)
    assert names(Environment(OTHER_ACCOUNT, REGION))[1] != bucket


@pytest.mark.parametrize(
    ("resource_type", "properties", "ref", "arn"),
    [
        ("AWS::S3::Bucket", {"BucketName": "b"}, "b", "arn:aws:s3:::b"),
        (
            "AWS::SNS::Topic",
            {"TopicName": "t"},
            f"arn:aws:sns:{REGION}:{ACCOUNT}:t",
            f"arn:aws:sns:{REGION}:{ACCOUNT}:t",
        ),
        (
            "AWS::SageMaker::ModelPackageGroup",
            {"ModelPackageGroupName": "Models"},
            f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:model-package-group/models",
            f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:model-package-group/models",
        ),
        ("AWS::ECR::Repository", {"RepositoryName": "r"}, "r", f"arn:aws:ecr:{REGION}:{ACCOUNT}:repository/r"),
        (
            "AWS::StepFunctions::StateMachine",
            {"StateMachineName": "sm"},
            f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:sm",
            f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:sm",
        ),
        ("AWS::CodeBuild::Project", {"Name": "p"}, "p", f"arn:aws:codebuild:{REGION}:{ACCOUNT}:project/p"),
        ("AWS::KMS::Alias", {"AliasName": "alias/a"}, "alias/a", f"arn:aws:kms:{REGION}:{ACCOUNT}:alias/a"),
        (
            "AWS::IAM::ManagedPolicy",
            {"ManagedPolicyName": "m"},
            f"arn:aws:iam::{ACCOUNT}:policy/m",
            f"arn:aws:iam::{ACCOUNT}:policy/m",
        ),
    ],
)
def test_ref_and_arn_of_each_resource_type(resource_type, properties, ref, arn):
    stack = one_stack({"R": {"Type": resource_type, "Properties": properties}}).stack("Test")

    assert stack.resolve({"Ref": "R"}) == ref
    assert stack.arn("R") == arn


def test_a_kms_key_is_referenced_by_a_key_id_that_its_arn_holds():
    stack = one_stack({"Key": {"Type": "AWS::KMS::Key", "Properties": {}}}).stack("Test")

    key_id = stack.resolve({"Ref": "Key"})
    assert re.fullmatch(r"[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}", key_id)
    assert stack.resolve({"Fn::GetAtt": ["Key", "Arn"]}) == f"arn:aws:kms:{REGION}:{ACCOUNT}:key/{key_id}"
    assert stack.resolve({"Fn::GetAtt": ["Key", "KeyId"]}) == key_id


@pytest.mark.parametrize("target", [{"Ref": "Key"}, {"Fn::GetAtt": ["Key", "Arn"]}])
def test_aliases_map_to_their_key_whether_targeted_by_id_or_arn(target):
    deployment = one_stack(
        {
            "Key": {"Type": "AWS::KMS::Key"},
            "Alias": {"Type": "AWS::KMS::Alias", "Properties": {"AliasName": "alias/data", "TargetKeyId": target}},
            "Second": {"Type": "AWS::KMS::Alias", "Properties": {"AliasName": "alias/more", "TargetKeyId": target}},
        }
    )
    key_arn = deployment.stack("Test").arn("Key")

    assert deployment.key_aliases == {key_arn: ("alias/data", "alias/more")}
    assert deployment.alias_targets[f"arn:aws:kms:{REGION}:{ACCOUNT}:alias/data"] == key_arn


def test_attributes_and_a_project_role():
    stack = one_stack(
        {
            "Topic": {"Type": "AWS::SNS::Topic", "Properties": {"TopicName": "t"}},
            "Repo": {"Type": "AWS::ECR::Repository", "Properties": {"RepositoryName": "r"}},
            "Role": {"Type": "AWS::IAM::Role", "Properties": {"RoleName": "build"}},
            "Project": {
                "Type": "AWS::CodeBuild::Project",
                "Properties": {"ServiceRole": {"Fn::GetAtt": ["Role", "Arn"]}},
            },
        }
    ).stack("Test")

    assert stack.resolve({"Fn::GetAtt": ["Topic", "TopicName"]}) == "t"
    assert stack.resolve({"Fn::GetAtt": ["Repo", "RepositoryUri"]}) == f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/r"
    assert stack.resolve(stack.properties("Project")["ServiceRole"]) == f"arn:aws:iam::{ACCOUNT}:role/build"


def test_join_sub_select_split():
    resources = {"Bucket": {"Type": "AWS::S3::Bucket", "Properties": {"BucketName": "b"}}}

    assert resolve({"Fn::Join": ["/", [{"Fn::GetAtt": ["Bucket", "Arn"]}, "raw", "*"]]}, resources=resources) == (
        "arn:aws:s3:::b/raw/*"
    )
    assert resolve({"Fn::Sub": "${Bucket.Arn}/${AWS::Region}/${!Literal}"}, resources=resources) == (
        f"arn:aws:s3:::b/{REGION}/${{Literal}}"
    )
    assert resolve({"Fn::Sub": ["${Name}-${Bucket}", {"Name": {"Ref": "AWS::AccountId"}}]}, resources=resources) == (
        f"{ACCOUNT}-b"
    )
    assert resolve({"Fn::Select": [1, {"Fn::Split": [":", "a:b:c"]}]}) == "b"


def test_find_in_map_with_and_without_a_default():
    mappings = {"Images": {REGION: {"Training": "image:1"}}}

    assert resolve({"Fn::FindInMap": ["Images", {"Ref": "AWS::Region"}, "Training"]}, Mappings=mappings) == "image:1"
    assert (
        resolve({"Fn::FindInMap": ["Images", "us-east-1", "Training", {"DefaultValue": "none"}]}, Mappings=mappings)
        == "none"
    )
    with pytest.raises(TemplateError, match="FindInMap"):
        resolve({"Fn::FindInMap": ["Images", "us-east-1", "Training"]}, Mappings=mappings)


def test_conditions_if_and_no_value():
    conditions = {
        "InEu": {"Fn::Equals": [{"Ref": "AWS::Region"}, REGION]},
        "Never": {"Fn::Not": [{"Condition": "InEu"}]},
        "Both": {"Fn::And": [{"Condition": "InEu"}, {"Fn::Or": [{"Condition": "Never"}, {"Condition": "InEu"}]}]},
    }
    resources = {
        "Kept": {"Type": "AWS::S3::Bucket", "Condition": "Both"},
        "Dropped": {"Type": "AWS::S3::Bucket", "Condition": "Never"},
    }
    stack = one_stack(resources, Conditions=conditions).stack("Test")

    assert stack.resolve({"Fn::If": ["InEu", "eu", "elsewhere"]}) == "eu"
    assert stack.resolve(["a", {"Fn::If": ["Never", "b", {"Ref": "AWS::NoValue"}]}]) == ["a"]
    assert set(stack.resources) == {"Kept"}
    with pytest.raises(TemplateError, match="Dropped"):
        stack.resolve({"Ref": "Dropped"})


def test_parameters_take_their_default_or_the_given_value_and_ssm_ones_need_a_value():
    template = {
        "Parameters": {
            "Stage": {"Type": "String", "Default": "dev"},
            "Bootstrap": {"Type": "AWS::SSM::Parameter::Value<String>", "Default": "/cdk-bootstrap/version"},
        },
        "Resources": {},
    }
    stack = TemplateStack("Test", template)

    assert deploy((stack, HERE)).stack("Test").resolve({"Ref": "Stage"}) == "dev"
    assert deploy((stack, HERE), parameters={"Test": {"Stage": "prod"}}).stack("Test").resolve({"Ref": "Stage"}) == (
        "prod"
    )
    with pytest.raises(TemplateError, match="Bootstrap"):
        deploy((stack, HERE)).stack("Test").resolve({"Ref": "Bootstrap"})


def producer(region=REGION) -> TemplateStack:
    return TemplateStack(
        "Producer",
        {
            "Resources": {"Role": {"Type": "AWS::IAM::Role", "Properties": {"RoleName": "shared"}}},
            "Outputs": {
                "RoleName": {"Value": {"Ref": "Role"}},
                "RoleArn": {"Value": {"Fn::GetAtt": ["Role", "Arn"]}, "Export": {"Name": "shared-role-arn"}},
            },
        },
        stack_name="producer",
    )


def consumer(value) -> TemplateStack:
    return TemplateStack("Consumer", {"Resources": {}, "Outputs": {"Value": {"Value": value}}}, stack_name="consumer")


def test_import_value_reads_an_export_of_the_same_account_and_region():
    value = {"Fn::ImportValue": "shared-role-arn"}

    same = deploy((producer(), HERE), (consumer(value), HERE))
    assert same.stack("Consumer").output("Value") == f"arn:aws:iam::{ACCOUNT}:role/shared"
    elsewhere = deploy((producer(), Environment(ACCOUNT, "us-east-1")), (consumer(value), HERE))
    with pytest.raises(TemplateError, match="no export"):
        elsewhere.stack("Consumer").output("Value")


def test_get_stack_output_reads_the_producer_in_its_region_or_in_the_account_its_role_names():
    same_account = {"Fn::GetStackOutput": {"StackName": "producer", "Region": REGION, "OutputName": "RoleName"}}
    other_account = {
        "Fn::GetStackOutput": {
            "StackName": "producer",
            "OutputName": "RoleArn",
            "RoleArn": f"arn:aws:iam::{OTHER_ACCOUNT}:role/reader",
        }
    }
    deployment = deploy(
        (producer(), Environment(OTHER_ACCOUNT, REGION)),
        (consumer([same_account, other_account]), HERE),
    )

    with pytest.raises(TemplateError, match=f"producer in {ACCOUNT}"):
        deployment.stack("Consumer").output("Value")
    deployment = deploy((producer(), Environment(OTHER_ACCOUNT, REGION)), (consumer(other_account), HERE))
    assert deployment.stack("Consumer").output("Value") == f"arn:aws:iam::{OTHER_ACCOUNT}:role/shared"


def test_what_cannot_be_resolved_raises():
    resources = {"Thing": {"Type": "AWS::Some::Thing"}, "Bucket": {"Type": "AWS::S3::Bucket"}}

    with pytest.raises(TemplateError, match="Fn::GetAZs"):
        resolve({"Fn::GetAZs": ""})
    with pytest.raises(TemplateError, match="AWS::Some::Thing"):
        resolve({"Ref": "Thing"}, resources=resources)
    with pytest.raises(TemplateError, match="Bucket.Nope"):
        resolve({"Fn::GetAtt": ["Bucket", "Nope"]}, resources=resources)


def test_stacks_keep_their_synthesized_environment_and_agnostic_ones_need_one():
    bound = TemplateStack("Bound", {"Resources": {}}, environment=f"aws://{OTHER_ACCOUNT}/us-east-1")
    agnostic = TemplateStack("Agnostic", {"Resources": {}})

    deployment = Deployment.of([bound, agnostic], default=HERE)
    assert deployment.stack("Bound").environment == Environment(OTHER_ACCOUNT, "us-east-1")
    assert deployment.stack("Agnostic").environment == HERE
    moved = Deployment.of([bound], environments={"Bound": HERE})
    assert moved.stack("Bound").environment == HERE
    with pytest.raises(ValueError, match="Agnostic is environment-agnostic"):
        Deployment.of([agnostic])


def test_two_stacks_of_one_name_cannot_share_an_account_and_region():
    first, second = TemplateStack("A", {"Resources": {}}, "same"), TemplateStack("B", {"Resources": {}}, "same")

    with pytest.raises(ValueError, match="both same"):
        Deployment.of([first, second], default=HERE)
    Deployment.of([first, second], environments={"A": HERE, "B": Environment(OTHER_ACCOUNT, REGION)})


def test_construct_ids_find_cdk_logical_ids_without_their_hash():
    resources = {
        "RolesSageMakerExecutionD926C300": {"Type": "AWS::IAM::Role"},
        "RolesSageMakerExecutionDefaultPolicy887C5A19": {"Type": "AWS::IAM::Policy"},
    }
    stack = one_stack(resources).stack("Test")

    assert stack.logical_id("RolesSageMakerExecution") == "RolesSageMakerExecutionD926C300"
    assert stack.logical_id("RolesSageMakerExecutionDefaultPolicy") == "RolesSageMakerExecutionDefaultPolicy887C5A19"
    with pytest.raises(KeyError):
        stack.logical_id("Roles")

"""Builds the SageMaker Pipeline definition with SageMaker Python SDK v2, without calling AWS.

Every AWS location comes in as a plain string (`PipelineTargets`): at synth those are placeholders that
CloudFormation substitutes, so the definition needs neither credentials nor the deployed resources.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

from sagemaker.drift_check_baselines import DriftCheckBaselines
from sagemaker.estimator import EstimatorBase
from sagemaker.inputs import TrainingInput
from sagemaker.model import Model
from sagemaker.model_metrics import MetricsSource, ModelMetrics
from sagemaker.network import NetworkConfig
from sagemaker.processing import ProcessingInput, ProcessingOutput, ScriptProcessor
from sagemaker.pytorch import PyTorch
from sagemaker.tuner import CategoricalParameter, ContinuousParameter, HyperparameterTuner
from sagemaker.workflow.condition_step import ConditionStep
from sagemaker.workflow.conditions import ConditionGreaterThanOrEqualTo
from sagemaker.workflow.execution_variables import ExecutionVariables
from sagemaker.workflow.fail_step import FailStep
from sagemaker.workflow.functions import Join, JsonGet
from sagemaker.workflow.model_step import ModelStep
from sagemaker.workflow.parameters import ParameterFloat, ParameterInteger, ParameterString
from sagemaker.workflow.pipeline import Pipeline
from sagemaker.workflow.pipeline_context import PipelineSession
from sagemaker.workflow.properties import PropertyFile
from sagemaker.workflow.retry import (
    SageMakerJobExceptionTypeEnum,
    SageMakerJobStepRetryPolicy,
    StepExceptionTypeEnum,
    StepRetryPolicy,
)
from sagemaker.workflow.steps import CacheConfig, ProcessingStep, Step, TuningStep

from infra import naming
from infra.config import StageConfig
from infra.instance_types import supports_volume_kms_key
from infra.layout import BASELINE_DIR, ArtifactPrefix
from pipelines import spec
from pipelines.bundle import TRAINING_ENTRY_POINT
from pipelines.sdk import offline_build, pipeline_session
from pipelines.spec import ParameterName, StepName
from training_code.contract import (
    ACCURACY_JSON_PATH,
    CONSTRAINTS_FILE,
    EVALUATION_FILE,
    MODEL_QUALITY_CONSTRAINTS_FILE,
    REQUEST_CONTENT_TYPES,
    RESPONSE_CONTENT_TYPES,
    STATISTICS_FILE,
    WARM_START_CHANNEL,
)
from training_code.metrics import METRIC_DEFINITIONS, TUNING_OBJECTIVE_METRIC, TUNING_OBJECTIVE_TYPE

CACHE_EXPIRY = "P30D"
RETRY_ATTEMPTS = 5


@dataclass(frozen=True)
class PipelineTargets:
    """Where the pipeline's resources live: CloudFormation placeholders at synth, real values in a local run."""

    region: str
    execution_role_arn: str
    kms_key_arn: str
    data_bucket: str
    artifacts_bucket: str
    code_bundle_uri: str
    step_runner_uri: str
    training_image_uri: str
    processing_image_uri: str
    evaluation_image_uri: str
    serving_image_uri: str


def pipeline_definition(config: StageConfig, targets: PipelineTargets) -> dict[str, Any]:
    """The definition as a JSON-ready dict, identical for identical inputs."""
    with offline_build():
        definition = json.loads(build_pipeline(config, targets).definition())
    for step in definition["Steps"]:
        static = step["Arguments"].get("TrainingJobDefinition", {}).get("StaticHyperParameters", {})
        if static:
            # The SDK stamps a job name with the current time here and the session's region; neither belongs in
            # a definition that must be the same on every synth and run in any region.
            static["sagemaker_job_name"] = json.dumps(naming.pipeline_name(config))
            static["sagemaker_region"] = json.dumps(targets.region)
            # With network isolation the code arrives through a channel, where the SDK assumes the object is named
            # sourcedir.tar.gz; it keeps the name it has in S3 (its content hash).
            channel_bundle = PurePosixPath(EstimatorBase.CONTAINER_CODE_CHANNEL_SOURCEDIR_PATH)
            if static.get("sagemaker_submit_directory") == json.dumps(str(channel_bundle)):
                bundle_name = PurePosixPath(targets.code_bundle_uri).name
                static["sagemaker_submit_directory"] = json.dumps(str(channel_bundle.with_name(bundle_name)))
    return definition


def build_pipeline(config: StageConfig, targets: PipelineTargets) -> Pipeline:
    session = pipeline_session(targets.artifacts_bucket)
    parameters = {
        parameter.name: _sdk_parameter(parameter)
        for parameter in spec.parameter_specs(config, targets.data_bucket, targets.serving_image_uri)
    }
    pipeline_name = naming.pipeline_name(config)
    run_prefix = Join(
        on="/",
        values=[f"s3://{targets.artifacts_bucket}/{ArtifactPrefix.PIPELINE_RUNS}{pipeline_name}", _EXECUTION_ID],
    )
    return Pipeline(
        name=pipeline_name,
        parameters=list(parameters.values()),
        steps=_StepBuilder(config, targets, session, parameters, run_prefix).steps(),
        # No SageMaker Experiments tracking: nothing reads it, and it would need its own permissions.
        pipeline_experiment_config=None,
        sagemaker_session=session,
    )


_EXECUTION_ID = ExecutionVariables.PIPELINE_EXECUTION_ID


def _sdk_parameter(parameter: spec.ParameterSpec) -> ParameterString | ParameterInteger | ParameterFloat:
    if parameter.kind is int:
        return ParameterInteger(name=parameter.name, default_value=parameter.default)
    if parameter.kind is float:
        return ParameterFloat(name=parameter.name, default_value=parameter.default)
    return ParameterString(
        name=parameter.name,
        default_value=parameter.default,
        enum_values=list(parameter.allowed) if parameter.allowed else None,
    )


class _StepBuilder:
    def __init__(
        self,
        config: StageConfig,
        targets: PipelineTargets,
        session: PipelineSession,
        parameters: dict[str, Any],
        run_prefix: Join,
    ) -> None:
        self.config = config
        self.targets = targets
        self.session = session
        self.parameters = parameters
        self.run_prefix = run_prefix
        self.cache = CacheConfig(enable_caching=config.pipeline.enable_step_caching, expire_after=CACHE_EXPIRY)
        # Spot capacity is not guaranteed: job steps retry on capacity and limit errors, every step on throttling.
        self.service_retries = [
            StepRetryPolicy(
                exception_types=[StepExceptionTypeEnum.SERVICE_FAULT, StepExceptionTypeEnum.THROTTLING],
                interval_seconds=10,
                backoff_rate=2.0,
                max_attempts=RETRY_ATTEMPTS,
            )
        ]
        self.retries = [
            SageMakerJobStepRetryPolicy(
                exception_types=[
                    SageMakerJobExceptionTypeEnum.CAPACITY_ERROR,
                    SageMakerJobExceptionTypeEnum.RESOURCE_LIMIT,
                    SageMakerJobExceptionTypeEnum.INTERNAL_ERROR,
                ],
                interval_seconds=60,
                backoff_rate=2.0,
                max_attempts=RETRY_ATTEMPTS,
            ),
            *self.service_retries,
        ]
        vpc = config.pipeline.vpc
        self.network = NetworkConfig(
            enable_network_isolation=config.pipeline.network_isolation,
            encrypt_inter_container_traffic=True,
            security_group_ids=vpc.security_group_ids if vpc else None,
            subnets=vpc.subnet_ids if vpc else None,
        )
        # Written by Evaluate, read by CheckAccuracy.
        self.evaluation_report = PropertyFile(
            name=spec.EVALUATION_PROPERTY_FILE, output_name=spec.EVALUATION_OUTPUT, path=EVALUATION_FILE
        )
        self.built: dict[StepName, Step] = {}

    def steps(self) -> list[Step]:
        """The pipeline's steps in spec.STEP_ORDER: the steps up to CheckAccuracy run in turn, and those after it
        are its success branch, built first because the condition step takes them as it is made."""
        build = {
            StepName.PREPROCESS: self.preprocess,
            StepName.TUNE: self.tune,
            StepName.EVALUATE: self.evaluate,
            StepName.BASELINE: self.baseline,
            StepName.REGISTER: self.register,
        }
        gate = spec.STEP_ORDER.index(StepName.CHECK_ACCURACY)
        in_turn, if_passed = spec.STEP_ORDER[:gate], spec.STEP_ORDER[gate + 1 :]
        for name in (*in_turn, *if_passed):
            self.built[name] = build[name]()
        self.built[StepName.CHECK_ACCURACY] = self.check_accuracy([self.built[name] for name in if_passed])
        return [self.built[name] for name in spec.STEP_ORDER[: gate + 1]]

    def _run_location(self, *parts: str) -> Join:
        return Join(on="/", values=[self.run_prefix, *parts])

    def _processor(self, image_uri: str, instance_type: Any, job_prefix: str) -> ScriptProcessor:
        return ScriptProcessor(
            image_uri=image_uri,
            command=["python3"],
            role=self.targets.execution_role_arn,
            instance_type=instance_type,
            instance_count=1,
            # Types with local NVMe storage encrypt it in hardware, and SageMaker refuses a volume key for them; the
            # ProcessingInstanceType parameter admits only types of the configured type's kind (pipelines/spec.py).
            volume_kms_key=self.targets.kms_key_arn
            if supports_volume_kms_key(self.config.processing.instance_type)
            else None,
            output_kms_key=self.targets.kms_key_arn,
            network_config=self.network,
            base_job_name=f"{self.config.resource_prefix}-{job_prefix}",
            sagemaker_session=self.session,
        )

    def _code_inputs(self) -> list[ProcessingInput]:
        return [
            ProcessingInput(source=self.targets.code_bundle_uri, destination=str(spec.BUNDLE_DIR), input_name="bundle")
        ]

    def _step_arguments(self, module: str, *arguments: str) -> list[str]:
        return ["--bundle-dir", str(spec.BUNDLE_DIR), module, *arguments]

    def _script_step(
        self,
        name: StepName,
        image_uri: str,
        module: str,
        inputs: list[ProcessingInput],
        outputs: list[ProcessingOutput],
        arguments: list[Any],
        property_files: list[PropertyFile] | None = None,
    ) -> ProcessingStep:
        """A processing step that runs a step module from the code bundle through the step runner."""
        processor = self._processor(image_uri, self.parameters[ParameterName.PROCESSING_INSTANCE_TYPE], name.lower())
        step_args = processor.run(
            code=self.targets.step_runner_uri,
            inputs=[*inputs, *self._code_inputs()],
            outputs=outputs,
            arguments=self._step_arguments(module, *arguments),
        )
        return ProcessingStep(
            name=name,
            step_args=step_args,
            property_files=property_files,
            cache_config=self.cache,
            retry_policies=self.retries,
        )

    def _output_of(self, step: StepName, output: str) -> Any:
        return self.built[step].properties.ProcessingOutputConfig.Outputs[output].S3Output.S3Uri

    def preprocess(self) -> ProcessingStep:
        return self._script_step(
            StepName.PREPROCESS,
            self.targets.processing_image_uri,
            spec.PREPROCESS_MODULE,
            inputs=[
                ProcessingInput(
                    source=self.parameters[ParameterName.INPUT_DATA_URI],
                    destination=str(spec.RAW_INPUT_DIR),
                    input_name="raw",
                )
            ],
            outputs=[
                ProcessingOutput(
                    output_name=name,
                    source=str(spec.SPLITS_OUTPUT_DIR / name),
                    destination=self._run_location("preprocess", name),
                )
                for name in spec.PREPROCESS_OUTPUTS
            ],
            arguments=[
                "--input-dir",
                str(spec.RAW_INPUT_DIR),
                "--output-dir",
                str(spec.SPLITS_OUTPUT_DIR),
                "--label-column",
                self.parameters[ParameterName.LABEL_COLUMN],
                # Errors then name the user's files where they uploaded them, not the job's copy.
                "--input-uri",
                self.parameters[ParameterName.INPUT_DATA_URI],
            ],  # fmt: skip
        )

    def tune(self) -> TuningStep:
        training = self.config.training
        pipeline_name = naming.pipeline_name(self.config)
        estimator = PyTorch(
            entry_point=TRAINING_ENTRY_POINT,
            source_dir=self.targets.code_bundle_uri,
            image_uri=self.targets.training_image_uri,
            role=self.targets.execution_role_arn,
            instance_type=self.parameters[ParameterName.TRAINING_INSTANCE_TYPE],
            instance_count=self.parameters[ParameterName.TRAINING_INSTANCE_COUNT],
            use_spot_instances=training.use_spot,
            max_run=self.parameters[ParameterName.MAX_RUNTIME_SECONDS],
            max_wait=self.parameters.get(ParameterName.MAX_WAIT_SECONDS),
            # One prefix per execution (SageMaker copies the whole prefix into every trial), in which each trial
            # checkpoints under its own job name (training_code.train does that).
            checkpoint_s3_uri=Join(
                on="/",
                values=[
                    f"s3://{self.targets.artifacts_bucket}/{ArtifactPrefix.CHECKPOINTS}{pipeline_name}",
                    _EXECUTION_ID,
                ],
            ),
            output_path=f"s3://{self.targets.artifacts_bucket}/{self._models_prefix()}",
            # No volume key: SageMaker refuses one for GPU types with local NVMe storage (g4dn, g5, g6, g6e), whose
            # instance storage is encrypted by the hardware. Outputs are encrypted with the stage key.
            output_kms_key=self.targets.kms_key_arn,
            encrypt_inter_container_traffic=True,
            enable_network_isolation=self.config.pipeline.network_isolation,
            subnets=self.network.subnets,
            security_group_ids=self.network.security_group_ids,
            # torchrun on every job: one process per GPU, and DDP across instances when there are several.
            distribution={"torch_distributed": {"enabled": True}},
            hyperparameters=spec.static_hyperparameters(),
            disable_profiler=True,
            debugger_hook_config=False,
            base_job_name=f"{self.config.resource_prefix}-train",
            sagemaker_session=self.session,
        )
        tuner = HyperparameterTuner(
            estimator,
            objective_metric_name=TUNING_OBJECTIVE_METRIC,
            objective_type=TUNING_OBJECTIVE_TYPE,
            metric_definitions=METRIC_DEFINITIONS,
            hyperparameter_ranges={dimension.hyperparameter: _sdk_range(dimension) for dimension in spec.SEARCH_SPACE},
            strategy=spec.TUNING_STRATEGY,
            max_jobs=self.parameters[ParameterName.TUNING_MAX_JOBS],
            max_parallel_jobs=self.parameters[ParameterName.TUNING_MAX_PARALLEL_JOBS],
            early_stopping_type="Auto",
            base_tuning_job_name=f"{self.config.resource_prefix}-tune",
        )
        channels = {
            channel: TrainingInput(self._output_of(StepName.PREPROCESS, channel), content_type="text/csv")
            for channel in ("train", "validation")
        }
        if ParameterName.PREVIOUS_MODEL_URI in self.parameters:
            channels[WARM_START_CHANNEL] = TrainingInput(
                self.parameters[ParameterName.PREVIOUS_MODEL_URI], input_mode="File"
            )
        return TuningStep(
            name=StepName.TUNE,
            step_args=tuner.fit(inputs=channels),
            cache_config=self.cache,
            retry_policies=self.retries,
        )

    def _models_prefix(self) -> str:
        """Where the trials write their model.tar.gz; the best one is read back from here."""
        return f"{ArtifactPrefix.MODELS}{naming.pipeline_name(self.config)}"

    def best_model_uri(self) -> Join:
        tune = self.built[StepName.TUNE]
        return tune.get_top_model_s3_uri(top_k=0, s3_bucket=self.targets.artifacts_bucket, prefix=self._models_prefix())

    def evaluate(self) -> ProcessingStep:
        return self._script_step(
            StepName.EVALUATE,
            self.targets.evaluation_image_uri,
            spec.EVALUATE_MODULE,
            inputs=[
                ProcessingInput(
                    source=self.best_model_uri(), destination=str(spec.MODEL_INPUT_DIR), input_name="model"
                ),
                ProcessingInput(
                    source=self._output_of(StepName.PREPROCESS, "test"),
                    destination=str(spec.TEST_INPUT_DIR),
                    input_name="test",
                ),
            ],
            outputs=[
                ProcessingOutput(
                    output_name=spec.EVALUATION_OUTPUT,
                    source=str(spec.EVALUATION_OUTPUT_DIR),
                    destination=self._run_location("evaluation"),
                )
            ],
            arguments=[
                "--model-dir",
                str(spec.MODEL_INPUT_DIR),
                "--test-dir",
                str(spec.TEST_INPUT_DIR),
                "--output-dir",
                str(spec.EVALUATION_OUTPUT_DIR),
            ],  # fmt: skip
            property_files=[self.evaluation_report],
        )

    def baseline(self) -> ProcessingStep:
        """The data-quality baseline of the training features, in Model Monitor's formats: what the version is
        registered with, and what monitoring compares served requests with."""
        return self._script_step(
            StepName.BASELINE,
            self.targets.processing_image_uri,
            spec.BASELINE_MODULE,
            inputs=[
                ProcessingInput(
                    source=self._output_of(StepName.PREPROCESS, "train"),
                    destination=str(spec.TRAIN_INPUT_DIR),
                    input_name="train",
                )
            ],
            outputs=[
                ProcessingOutput(
                    output_name=spec.BASELINE_OUTPUT,
                    source=str(spec.BASELINE_OUTPUT_DIR),
                    destination=self._run_location(BASELINE_DIR),
                )
            ],
            arguments=[
                "--train-dir",
                str(spec.TRAIN_INPUT_DIR),
                "--output-dir",
                str(spec.BASELINE_OUTPUT_DIR),
                "--label-column",
                self.parameters[ParameterName.LABEL_COLUMN],
                "--drift-threshold",
                str(self.config.pipeline.drift_threshold),
                "--accuracy-threshold",
                # Container arguments are strings; the parameter is a number.
                self.parameters[ParameterName.ACCURACY_THRESHOLD].to_string(),
            ],  # fmt: skip
        )

    def _baseline_file(self, name: str) -> MetricsSource:
        output = self._output_of(StepName.BASELINE, spec.BASELINE_OUTPUT)
        return MetricsSource(content_type="application/json", s3_uri=Join(on="/", values=[output, name]))

    def register(self) -> ModelStep:
        settings = self.config.pipeline
        model = Model(
            image_uri=self.parameters[ParameterName.SERVING_IMAGE_URI],
            model_data=self.best_model_uri(),
            role=self.targets.execution_role_arn,
            sagemaker_session=self.session,
        )
        evaluation_uri = Join(
            on="/",
            values=[self._output_of(StepName.EVALUATE, spec.EVALUATION_OUTPUT), EVALUATION_FILE],
        )
        step_args = model.register(
            content_types=list(REQUEST_CONTENT_TYPES),
            response_types=list(RESPONSE_CONTENT_TYPES),
            # The stage's registration settings, not its endpoints' types: changing an endpoint changes no pipeline.
            inference_instances=list(settings.registration_instance_types) or None,
            transform_instances=list(settings.registration_transform_instance_types) or None,
            model_package_group_name=naming.model_package_group_name(self.config),
            approval_status=self.parameters[ParameterName.MODEL_APPROVAL_STATUS],
            model_metrics=ModelMetrics(
                model_statistics=MetricsSource(content_type="application/json", s3_uri=evaluation_uri),
                model_constraints=self._baseline_file(MODEL_QUALITY_CONSTRAINTS_FILE),
                model_data_statistics=self._baseline_file(STATISTICS_FILE),
                model_data_constraints=self._baseline_file(CONSTRAINTS_FILE),
            ),
            # What monitoring of this version compares served requests, and its accuracy on them, with.
            drift_check_baselines=DriftCheckBaselines(
                model_statistics=MetricsSource(content_type="application/json", s3_uri=evaluation_uri),
                model_constraints=self._baseline_file(MODEL_QUALITY_CONSTRAINTS_FILE),
                model_data_statistics=self._baseline_file(STATISTICS_FILE),
                model_data_constraints=self._baseline_file(CONSTRAINTS_FILE),
            ),
            description=f"MLP classifier from pipeline {naming.pipeline_name(self.config)}",
            customer_metadata_properties={spec.TRIGGER_METADATA_KEY: self.parameters[ParameterName.TRIGGERED_BY]},
        )
        return ModelStep(name=StepName.REGISTER, step_args=step_args, retry_policies=self.service_retries)

    def check_accuracy(self, if_passed: list[Step]) -> ConditionStep:
        accuracy = JsonGet(
            step_name=StepName.EVALUATE, property_file=self.evaluation_report, json_path=ACCURACY_JSON_PATH
        )
        threshold = self.parameters[ParameterName.ACCURACY_THRESHOLD]
        too_low = FailStep(
            name=StepName.ACCURACY_TOO_LOW,
            error_message=Join(on=" ", values=["Test accuracy", accuracy, "is below the threshold", threshold]),
        )
        return ConditionStep(
            name=StepName.CHECK_ACCURACY,
            conditions=[ConditionGreaterThanOrEqualTo(left=accuracy, right=threshold)],
            if_steps=if_passed,
            else_steps=[too_low],
        )


def _sdk_range(dimension: spec.SearchDimension) -> ContinuousParameter | CategoricalParameter:
    if dimension.categories:
        return CategoricalParameter(list(dimension.categories))
    return ContinuousParameter(
        dimension.low, dimension.high, scaling_type="Logarithmic" if dimension.logarithmic else "Linear"
    )

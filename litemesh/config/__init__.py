"""Gateway configuration: gateway.yaml -> validated, frozen msgspec Structs."""
from .loader import EXAMPLE_CONFIG_PATH, ConfigError, ConfigIssue, load_config, load_config_text
from .model import (AdminSpec, GatewayConfig, LimitsSpec, ListenerSpec, PoolSpec, RespondSpec, RouteSpec, ServerSpec,
                    ServerTimeouts, ServiceSpec, TargetSpec, UpstreamTimeouts)
from .schema import json_schema
from .units import parse_address, parse_duration, parse_size

__all__ = [
    "GatewayConfig", "ListenerSpec", "ServiceSpec", "TargetSpec", "RouteSpec", "RespondSpec",
    "UpstreamTimeouts", "PoolSpec", "LimitsSpec", "ServerTimeouts", "ServerSpec", "AdminSpec",
    "ConfigError", "ConfigIssue", "load_config", "load_config_text", "json_schema",
    "EXAMPLE_CONFIG_PATH", "parse_duration", "parse_size", "parse_address",
]

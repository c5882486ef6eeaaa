"""AWS::CloudWatch::Alarm, which moto 5.2.5 skips (a Ref to one silently becomes null). Here it is an
alarm in moto's CloudWatch, as PutMetricAlarm makes it (a single metric or metric math), deleted with the
stack. Ref: the name; Fn::GetAtt Arn. (AWS::CloudWatch::Dashboard is moto's own model, and it works.)
"""
from moto.cloudwatch.models import Dimension, Metric, MetricDataQuery, MetricStat, cloudwatch_backends
from moto.core.common_models import CloudFormationModel

from .model import Model, call_with_properties


def _metric_query(query):
    stat = query.get("MetricStat")
    metric = stat and stat["Metric"]
    return MetricDataQuery(
        query_id=query["Id"],
        label=query.get("Label"),
        period=query.get("Period"),
        return_data=query.get("ReturnData"),
        expression=query.get("Expression"),
        metric_stat=stat
        and MetricStat(
            metric=Metric(
                metric_name=metric["MetricName"],
                namespace=metric.get("Namespace"),
                dimensions=[Dimension(d["Name"], d["Value"]) for d in metric.get("Dimensions", [])],
            ),
            period=stat["Period"],
            stat=stat["Stat"],
            unit=stat.get("Unit"),
        ),
    )


class Alarm(Model, CloudFormationModel):
    TYPE = "AWS::CloudWatch::Alarm"
    NAME_PROPERTY = "AlarmName"
    ATTRIBUTES = {"Arn": "arn"}

    def create(self, properties):
        backend = cloudwatch_backends[self.account_id][self.region_name]
        alarm = call_with_properties(
            backend.put_metric_alarm,
            properties,
            name=self.name,
            description=properties.get("AlarmDescription"),
            dimensions=properties.get("Dimensions", []),
            alarm_actions=properties.get("AlarmActions", []),
            ok_actions=properties.get("OKActions", []),
            insufficient_data_actions=properties.get("InsufficientDataActions", []),
            metric_data_queries=[_metric_query(query) for query in properties.get("Metrics", [])] or None,
            actions_enabled=properties.get("ActionsEnabled", True),
        )
        self.arn = alarm.alarm_arn

    def delete(self, account_id, region_name):
        cloudwatch_backends[account_id][region_name].delete_alarms([self.name])


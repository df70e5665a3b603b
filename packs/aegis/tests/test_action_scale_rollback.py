"""aegis.scale_up and aegis.rollback through the kubernetes client against an API stand-in."""

from __future__ import annotations

from rollback import Rollback
from scale_up import ScaleUp
from servers.standins import KubernetesStandIn
from st2tests.base import BaseActionTestCase


class _Kube(BaseActionTestCase):
    def setUp(self):
        super().setUp()
        self.kube = KubernetesStandIn().__enter__()
        self.addCleanup(self.kube.__exit__)

    def config(self, **kube):
        return {"mode": "auto", "kubernetes": {"host": self.kube.url, "namespace": "shop", **kube}}


class ScaleUpTest(_Kube):
    action_cls = ScaleUp

    def test_adds_replicas_within_the_maximum(self):
        self.kube.add_deployment("shop", "api", image="api:1", replicas=3)
        report = self.get_action_instance(self.config(max_replicas=4, scale_step=2)).run(
            incident_id="inc-1", target="api", dry_run=False)
        self.assertEqual((report["plan"]["replicas_from"], report["plan"]["replicas_to"]), (3, 4))
        self.assertEqual(self.kube.objects[("deployments", "shop", "api")]["spec"]["replicas"], 4)
        self.assertEqual(self.kube.calls("PATCH", "/deployments/api/scale$")[-1]["body"], {"spec": {"replicas": 4}})

    def test_never_more_than_double_without_approval(self):
        self.kube.add_deployment("shop", "api", image="api:1", replicas=2)
        action = self.get_action_instance(self.config(max_replicas=20))
        report = action.run(incident_id="inc-2", target="api", step=10)
        self.assertEqual(report["plan"]["replicas_to"], 4)
        approved = action.run(incident_id="inc-2", target="api", step=10, approved=True)
        self.assertEqual(approved["plan"]["replicas_to"], 12)
        self.assertEqual(self.kube.calls("PATCH"), [])  # both were dry runs

    def test_at_the_maximum_fails(self):
        self.kube.add_deployment("shop", "api", image="api:1", replicas=5)
        with self.assertRaisesRegex(Exception, "already has 5 replicas"):
            self.get_action_instance(self.config(max_replicas=5)).run(incident_id="inc-3", target="api", dry_run=False)


class RollbackTest(_Kube):
    action_cls = Rollback

    def test_undo_to_the_previous_revision_records_both_versions(self):
        self.kube.add_deployment("shop", "checkout", image="checkout:3", revisions={1: "checkout:1", 2: "checkout:2"})
        report = self.get_action_instance(self.config()).run(incident_id="inc-1", target="checkout", dry_run=False)
        plan = report["plan"]
        self.assertEqual((plan["from_revision"], plan["to_revision"]), (3, 2))
        self.assertEqual((plan["from_version"], plan["to_version"]), ("checkout:3", "checkout:2"))
        self.assertEqual(plan["commands"], ["kubectl rollout undo deployment/checkout -n shop --to-revision=2"])
        patch = self.kube.calls("PATCH", "/deployments/checkout$")[-1]
        self.assertEqual(patch["content_type"], "application/json-patch+json")
        template = self.kube.objects[("deployments", "shop", "checkout")]["spec"]["template"]
        self.assertEqual(template["spec"]["containers"][0]["image"], "checkout:2")
        self.assertNotIn("pod-template-hash", template["metadata"]["labels"])

    def test_nothing_to_roll_back_to_fails(self):
        self.kube.add_deployment("shop", "fresh", image="fresh:1")
        with self.assertRaisesRegex(Exception, "no revision before 1"):
            self.get_action_instance(self.config()).run(incident_id="inc-2", target="fresh")

    def test_deploy_api_webhook(self):
        from servers.standins import PagerDutyStandIn  # any recording server will do as the deploy API

        class DeployAPI(PagerDutyStandIn):
            def route(self, req):
                return 200, {"from_version": "v2", "to_version": "v1"}

        with DeployAPI() as api:
            config = {"mode": "auto", "targets": {"web": {"backend": "webhook"}},
                      "deploy_api": {"url": api.url + "/rollback", "token": "deploy-token"}}
            report = self.get_action_instance(config).run(incident_id="inc-3", target="web", dry_run=False)
            self.assertEqual((report["result"]["from_version"], report["result"]["to_version"]), ("v2", "v1"))
            call = api.calls("POST", "/rollback")[0]
            self.assertEqual(call["body"], {"action": "rollback", "service": "web"})
            self.assertEqual(call["headers"]["authorization"], "Bearer deploy-token")


class ComposeScaleUpTest(BaseActionTestCase):
    action_cls = ScaleUp

    def test_a_compose_service_gets_one_more_container_like_the_others(self):
        from servers.standins import DockerStandIn

        labels = {"com.docker.compose.project": "shop", "com.docker.compose.service": "web"}
        with DockerStandIn() as dock:
            for n in (1, 2):
                dock.add_container(f"shop-web-{n}", "web:7", {**labels, "com.docker.compose.container-number": str(n)})
            dock.add_container("shop-db-1", "postgres:16", {**labels, "com.docker.compose.service": "db"})
            config = {"mode": "auto", "targets": {"web": {"backend": "compose", "project": "shop", "service": "web"}},
                      "docker": {"base_url": "tcp://" + dock.url.split("//")[1], "max_replicas": 5}}
            dry = self.get_action_instance(config).run(incident_id="inc-1", target="web")
            self.assertEqual((dry["plan"]["replicas_from"], dry["plan"]["replicas_to"], dry["plan"]["new_containers"]),
                             (2, 3, ["shop-web-3"]))
            self.assertEqual(dock.calls("POST"), [])
            report = self.get_action_instance(config).run(incident_id="inc-1", target="web", dry_run=False)
            self.assertEqual(report["result"]["replicas"], 3)
            created = dock.calls("POST", "/containers/create")[0]
            self.assertEqual(created["query"]["name"], ["shop-web-3"])
            self.assertEqual(created["body"]["Image"], "web:7")
            self.assertEqual(created["body"]["Labels"]["com.docker.compose.container-number"], "3")
            self.assertEqual(created["body"]["HostConfig"]["NetworkMode"], "shop_default")
            self.assertEqual(len(dock.calls("POST", r"/containers/[0-9a-f]+/start$")), 1)

"""aegis.restart on its three backends: a real supervisord process, and Kubernetes and Docker
through their official clients against stand-ins speaking their REST APIs."""

from __future__ import annotations

import tempfile
import unittest

from restart import Restart
from servers import supervisord
from servers.standins import DockerStandIn, KubernetesStandIn
from st2tests.base import BaseActionTestCase

SKIP = supervisord.available()


@unittest.skipIf(SKIP, SKIP or "")
class SupervisorRestartTest(BaseActionTestCase):
    action_cls = Restart

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        cls.sv = supervisord.Supervisord(cls.tmp.name, {"victim": "python3 -c 'import time; time.sleep(100000)'"})
        cls.sv.start()

    @classmethod
    def tearDownClass(cls):
        cls.sv.stop()
        cls.tmp.cleanup()

    def config(self, **extra):
        return {"mode": "auto", "default_backend": "supervisor",
                "supervisor": {"url": self.sv.url, "username": "aegis", "password": "s3cret"}, **extra}

    def test_a_real_process_is_restarted(self):
        before = self.sv.wait_running("victim")
        report = self.get_action_instance(self.config()).run(incident_id="inc-1", target="victim", dry_run=False)
        self.assertEqual(report["outcome"], "done", report)
        after = self.sv.wait_running("victim")
        self.assertNotEqual(before["pid"], after["pid"])
        self.assertEqual(report["result"]["before"]["pid"], before["pid"])
        self.assertEqual(report["result"]["after"]["pid"], after["pid"])

    def test_dry_run_names_the_process_and_calls(self):
        before = self.sv.wait_running("victim")
        report = self.get_action_instance(self.config()).run(incident_id="inc-2", target="victim")
        self.assertEqual(report["plan"]["commands"], ["supervisor.stopProcess('victim')", "supervisor.startProcess('victim')"])
        self.assertEqual(report["plan"]["process"]["pid"], before["pid"])
        self.assertEqual(self.sv.wait_running("victim")["pid"], before["pid"])

    def test_second_restart_within_cooldown_is_refused(self):
        action = self.get_action_instance(self.config())
        self.assertEqual(action.run(incident_id="inc-3", target="victim", dry_run=False)["outcome"], "done")
        pid = self.sv.wait_running("victim")["pid"]
        second = self.get_action_instance(self.config()).run(incident_id="inc-4", target="victim", dry_run=False)
        self.assertEqual(second["outcome"], "refused")
        self.assertIn("cooldown", second["reason"])
        self.assertEqual(self.sv.wait_running("victim")["pid"], pid)

    def test_wrong_password_fails_clearly(self):
        config = self.config(supervisor={"url": self.sv.url, "username": "aegis", "password": "nope"})
        with self.assertRaises(Exception) as ctx:
            self.get_action_instance(config).run(incident_id="inc-5", target="victim")
        self.assertIn("401", str(ctx.exception))


class KubernetesRestartTest(BaseActionTestCase):
    action_cls = Restart

    def setUp(self):
        super().setUp()
        self.kube = KubernetesStandIn().__enter__()
        self.kube.add_deployment("shop", "checkout", image="checkout:2")
        self.kube.add_statefulset("shop", "ledger")
        self.addCleanup(self.kube.__exit__)

    def config(self):
        return {"mode": "auto", "kubernetes": {"host": self.kube.url, "token": "k8s-token", "namespace": "shop"}}

    def test_rollout_restart_of_the_deployment_owning_a_pod(self):
        report = self.get_action_instance(self.config()).run(incident_id="inc-1", target="checkout-00001-abcde", dry_run=False)
        self.assertEqual(report["plan"]["commands"], ["kubectl rollout restart deployment/checkout -n shop"])
        patch = self.kube.calls("PATCH", "/deployments/checkout$")[-1]
        self.assertEqual(patch["content_type"], "application/strategic-merge-patch+json")
        self.assertIn("kubectl.kubernetes.io/restartedAt", patch["body"]["spec"]["template"]["metadata"]["annotations"])
        self.assertEqual(patch["headers"]["authorization"], "Bearer k8s-token")
        self.assertEqual(report["result"]["generation"], 2)

    def test_statefulset_restart_and_dry_run_changes_nothing(self):
        dry = self.get_action_instance(self.config()).run(incident_id="inc-2", target="ledger")
        self.assertEqual(dry["plan"]["kind"], "StatefulSet")
        self.assertEqual(self.kube.calls("PATCH"), [])
        self.get_action_instance(self.config()).run(incident_id="inc-2", target="ledger", dry_run=False)
        self.assertEqual(len(self.kube.calls("PATCH", "/statefulsets/ledger$")), 1)

    def test_unknown_target_fails(self):
        with self.assertRaisesRegex(Exception, "no deployment, statefulset or pod"):
            self.get_action_instance(self.config()).run(incident_id="inc-3", target="nope", dry_run=False)


class DockerRestartTest(BaseActionTestCase):
    action_cls = Restart

    def test_container_restarted_through_the_engine_api(self):
        with DockerStandIn() as dock:
            cid = dock.add_container("checkout-1")
            config = {"mode": "auto", "targets": {"checkout": {"backend": "docker", "name": "checkout-1"}},
                      "docker": {"base_url": "tcp://" + dock.url.split("//")[1]}}
            report = self.get_action_instance(config).run(incident_id="inc-1", target="checkout", dry_run=False)
            self.assertEqual(report["plan"]["commands"], [f"POST /containers/{cid}/restart"])
            self.assertEqual(len(dock.calls("POST", f"/v1.41/containers/{cid}/restart")), 1)
            self.assertEqual(dock.containers[cid]["RestartCount"], 1)
            self.assertNotEqual(report["result"]["after"]["started_at"], report["result"]["before"]["started_at"])

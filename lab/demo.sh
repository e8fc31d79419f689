#!/usr/bin/env bash
# The lab demo: build the images, start the example site on podman, apply
# playbooks/site.yml, prove it with real traffic, print the flow table.
# KEEP_LAB=1 leaves the containers running afterwards (remove with: make lab-destroy).
# BACKEND=iptables puts every managed host and the gateway on the iptables backend.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
export CONTAINERS_CONF="$top/lab/containers.conf"
export ANSIBLE_CONFIG="$top/ansible.cfg"
bash lab/build-image.sh
bash .ci/collection-link.sh
report="$top/lab/report"
start=$(date +%s)
ansible-playbook lab/destroy.yml >/dev/null
ansible-playbook lab/create.yml
status=0
backend=${BACKEND:-nftables}
case "$backend" in nftables|iptables) ;; *) echo "BACKEND: '$backend' is not nftables or iptables" >&2; exit 2;; esac
ansible-playbook playbooks/site.yml -e "verify_egress_report_dir=$report" -e "egress_platform=$backend" || status=$?
echo
echo "== warden.egress lab ($backend): flows tried from each host (expected by the policy vs observed) =="
cat "$report/egress-report.txt"
ansible-playbook lab/render-pf.yml -e "report_dir=$report/pf" >/dev/null
echo
echo "== the same site on pf: the gateway's anchor (all boxes: $report/pf/*.pf) =="
grep -v '^table ' "$report/pf/gw1.pf" | grep -E '^(#|match|block|pass)' | sed -n '1,14p'  # sed reads to the end: head would end the pipe early (SIGPIPE under pipefail)
echo "... ($(grep -cE '^(match|block|pass)' "$report/pf/gw1.pf") rules, $(grep -c '^table ' "$report/pf/gw1.pf") tables)"
if ansible-playbook -i lab/inventory -i lab/routers.yml playbooks/site.yml --limit routers \
    -e "network_acl_render_dir=$report/acl" >"$report/acl-render.log" 2>&1; then
  acl="$report/acl/edge-ios.acls.txt"
  echo
  echo "== the same edge on routers: IOS, EOS and Junos ACLs, read back and checked against the policy ($report/acl/) =="
  grep -E '^ip(v6)? access-list' "$acl" | sed -n '1p'
  grep -E '^ [0-9]+ ' "$acl" | sed -n '1,2p'
  grep -E -A 1 '^ [0-9]+ remark role web_mail' "$acl"
  sed -n '/^ipv6 access-list/q;p' "$acl" | tail -n 2
  echo " ... ($(grep -cE '^ [0-9]+ (permit|deny)' "$acl") IPv4 and $(grep -cE '^ sequence [0-9]+ (permit|deny)' "$acl") IPv6 entries; $(tr -d '\r' <"$report/acl/edge-ios.interfaces.txt" | grep -c ' out$') ACLs bound out on GigabitEthernet0/1)"
else
  echo "router ACL rendering failed: $report/acl-render.log" >&2
  tail -n 20 "$report/acl-render.log" >&2
  status=1
fi
echo "(report: $report/egress-report.json, .xml (JUnit), .html; $(( $(date +%s) - start )) s)"
if [ "${KEEP_LAB:-0}" != 1 ]; then
  ansible-playbook lab/destroy.yml >/dev/null
fi
exit $status

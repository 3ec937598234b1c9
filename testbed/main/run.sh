#!/bin/bash
# The main job: boot the web server in the nested Xen host and ask it for its page from dom0.
source /scenario/lib.sh
xl_create httpd
wait_guest_log httpd 'httpd: serving on port 80' 60
timing create_to_serving "$(elapsed "$KEEL_CREATED_MS")"
xl list
echo "---- curl -i http://10.0.0.2/ (from dom0) ----"
check curl -sS -i --max-time 20 http://10.0.0.2/
echo "---- curl http://10.0.0.2/metrics ----"
check curl -sS --max-time 20 http://10.0.0.2/metrics
check xl shutdown httpd
wait_gone httpd 30
pass "httpd booted, answered from dom0 and powered off on xl shutdown"

package probes

import "strings"

// The path probes below are judged on the answer: a request for
// /phpmyadmin/ or /_ignition/execute-solution is only evidence when the
// site answered 403 or 404, since a site that runs phpMyAdmin or Laravel
// answers its own users there. They run in the background task that counts
// the answer, never on the request path, on the lower-cased path.

// adminPaths are admin interfaces that scanners look for (the facts behind
// CrowdSec's http-admin-interface-probing): matched anywhere in the path.
var adminPaths = []string{
	"/admin", "/wp-admin", "/wp-login", "/phpmyadmin", "/pma", "/myadmin", "/mysqladmin",
	"/sqladmin", "/dbadmin", "/pgadmin", "/manager/html", "/cpanel", "/webadmin", "/siteadmin",
	"/jmx-console", "/web-console", "/solr/admin", "/webdav",
}

// exploitPaths are the endpoints of widely scanned exploits and the names
// of common web shells (facts behind CrowdSec's http-cve-probing and
// http-backdoors-attempts), each with a short fixed name for the event.
// Every entry is specific to one product's vulnerable endpoint: an
// ordinary site has none of them, so two of them answered 4xx suffice.
var exploitPaths = []struct{ sub, name string }{
	{"/_ignition/execute-solution", "laravel_ignition"},
	{"/phpunit/src/util/php/eval-stdin.php", "phpunit_eval"},
	{"/global-protect/login.esp", "panos_globalprotect"},
	{"/cgi-bin/nas_sharing.cgi", "dlink_nas"},
	{"/hnap1", "dlink_hnap"},
	{"/boaform/admin/formlogin", "boa_formlogin"},
	{"/gponform/diag_form", "gpon_diag"},
	{"/setup.cgi", "netgear_setup"},
	{"/hedwig.cgi", "dlink_hedwig"},
	{"/cgi-bin/luci/;stok=", "openwrt_luci"},
	{"/tmunblock.cgi", "tmunblock"},
	{"/picsdesc.xml", "upnp_picsdesc"},
	{"/ctrlt/devicemanagement", "huawei_hg532"},
	{"/actuator/gateway/routes", "spring_gateway"},
	{"/solr/admin/info/system", "solr_info"},
	{"/wls-wsat/", "weblogic_wsat"},
	{"/_async/asyncresponseservice", "weblogic_async"},
	{"/autodiscover/autodiscover.json", "exchange_proxyshell"},
	{"/mgmt/tm/util/bash", "f5_bigip"},
	{"/remote/fgt_lang", "fortios_lang"},
	{"/dana-na/", "pulse_secure"},
	{"/vpns/", "citrix_vpns"},
	{"/nf/auth/startwebview.do", "citrix_netscaler"},
	{"/api/jsonws/invoke", "liferay_jsonws"},
	{"invokefunction", "thinkphp_rce"},
	{"/webtools/control/", "ofbiz_webtools"},
	{"/developmentserver/metadatauploader", "sap_metadata"},
	{"/_layouts/15/toolpane.aspx", "sharepoint_toolpane"},
	{"/goanywhere/", "goanywhere"},
	{"/mdm/checkin", "ivanti_mdm"},
	{"/guestaccess.aspx", "moveit_guest"},
	{"/webinterface/", "crushftp"},
	{"/clients/mycrl", "checkpoint_gateway"},
	{"/cgi/networkdiag.cgi", "networkdiag"},
	{"/server/node_upgrade_srv.js", "node_upgrade"},
	{"/containers/json", "docker_api"},
	{"/device.rsp", "dvr_device"},
	{"/vendor/phpunit/", "phpunit"},
}

// webShells are file names of common web shells and backdoors.
var webShells = map[string]bool{
	"c99.php": true, "c100.php": true, "r57.php": true, "r58.php": true, "wso.php": true,
	"shell.php": true, "cmd.php": true, "alfa.php": true, "xleet.php": true, "b374k.php": true,
	"webshell.php": true, "up.php": true, "sh3ll.php": true, "mini.php": true, "indoxploit.php": true,
	"filesman.php": true, "wp-shell.php": true, "cmd.jsp": true, "cmd.asp": true, "cmd.aspx": true,
	"shell.jsp": true, "shell.aspx": true, "alfa-rex.php": true, "0x.php": true, "marijuana.php": true,
}

// exploitProbe names the exploit a 4xx path (lower case) was aiming at.
// rawQuery catches the one query-borne classic: PHP-CGI argument injection
// ("?-d allow_url_include" and its soft-hyphen form, CVE-2012-1823 and
// CVE-2024-4577).
func exploitProbe(low, rawQuery string) (string, bool) {
	for _, e := range exploitPaths {
		if strings.Contains(low, e.sub) {
			return e.name, true
		}
	}
	if webShells[low[strings.LastIndexByte(low, '/')+1:]] {
		return "webshell", true
	}
	q := strings.ToLower(rawQuery)
	if strings.HasPrefix(q, "-d+") || strings.HasPrefix(q, "%ad") || strings.HasPrefix(q, "-d%20") {
		return "php_cgi", true
	}
	return "", false
}

// adminProbe reports whether a 4xx path (lower case) asked for an admin
// interface.
func adminProbe(low string) bool {
	for _, a := range adminPaths {
		if strings.Contains(low, a) {
			return true
		}
	}
	return false
}

// wordpressProbe reports whether a 4xx path (lower case) is a step of a
// WordPress scan: a /wp-… PHP file, xmlrpc.php, or a plugin's or theme's
// readme (how scanners fingerprint plugin versions). Missing images and
// stylesheets of a WordPress theme are not: broken sites have plenty.
func wordpressProbe(low string) bool {
	if strings.HasSuffix(low, "/xmlrpc.php") {
		return true
	}
	if !strings.Contains(low, "/wp-") {
		return false
	}
	return strings.HasSuffix(low, ".php") || strings.HasSuffix(low, "/readme.txt") || strings.HasSuffix(low, "/changelog.txt")
}

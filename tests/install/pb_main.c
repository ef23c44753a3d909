/*
 * A consumer of the installed protobuf-c payload API (troupe/pb.h): its
 * own .proto (order.proto) imports the installed troupe/pid.proto, and
 * an Order with a pid in it goes to a port and is read back. Exits 0 on
 * success.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <troupe/pb.h>

#include "order.pb-c.h"

int main(void)
{
	char dir[] = "/tmp/troupe-pb-consumer.XXXXXX";
	if (mkdtemp(dir) == NULL)
		return 1;
	char url[128];
	snprintf(url, sizeof(url), "ipc://%s/n", dir);
	const char *listen[] = {url, NULL};
	tr_runtime *rt;
	tr_node *node = NULL;
	tr_port *port = NULL;
	tr_node_opts o;
	tr_node_opts_init(&o);
	o.name = "shop";
	o.listen = listen;
	o.cookie = "install-test";
	int ok = 0;
	if (tr_runtime_start(&rt, NULL) != TR_OK)
		return 1;
	if (tr_node_start(&node, rt, &o) == TR_OK &&
	    tr_port_open(&port, rt) == TR_OK) {
		Shop__Order order = SHOP__ORDER__INIT;
		Troupe__Pid pid;
		char name[TR_NODE_NAME_MAX + 1];
		tr_msg *m = NULL;
		ProtobufCMessage *pm = NULL;
		tr_pid back;
		order.item = "tea";
		order.reply_to = &pid;
		ok = tr_pb_pid_set(&pid, name, node, tr_port_pid(port)) ==
		         TR_OK &&
		     tr_post_pb(rt, tr_port_pid(port), TR_PB_TYPE_AUTO,
		         &order.base) == TR_OK &&
		     tr_port_recv(&m, port, 5000) == TR_OK &&
		     m->type == tr_pb_type(&shop__order__descriptor) &&
		     tr_pb_unpack(&pm, m, &shop__order__descriptor, 4096) ==
		         TR_OK &&
		     strcmp(((Shop__Order *)pm)->item, "tea") == 0 &&
		     tr_pb_pid_get(
		         &back, node, ((Shop__Order *)pm)->reply_to) == TR_OK &&
		     tr_pid_eq(back, tr_port_pid(port));
		tr_pb_free(pm);
		tr_msg_free(m);
	}
	tr_port_close(port);
	tr_node_stop(node);
	tr_runtime_stop(rt);
	char sock[160];
	snprintf(sock, sizeof(sock), "%s/n", dir);
	unlink(sock);
	rmdir(dir);
	printf("pb consumer: %s\n", ok ? "ok" : "FAILED");
	return ok ? 0 : 1;
}

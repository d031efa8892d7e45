# shellcheck shell=bash
# DevStack plugin of volume-pool: installs volume-pool-manager, writes its
# configuration, creates its database and golden snapshots, and runs it as
# the systemd unit devstack@volume-pool-manager.
#
#   enable_plugin volume-pool <git url> [branch]
#
# DevStack provides the functions used here (iniset, run_process, ...).
# shellcheck disable=SC2154  # DevStack's variables (DEST, REGION_NAME, ...)

function install_volume_pool {
    setup_develop "$VOLUME_POOL_DIR"
}

# DevStack runs no Redis of its own: a redis:// coordination URL gets one
# on this node (its Python client comes with the project's requirements).
# Another tooz backend must be running already.
function install_volume_pool_coordination {
    if [[ "$VOLUME_POOL_COORDINATION_URL" != redis://* ]]; then
        return 0
    fi
    if is_ubuntu; then
        install_package redis-server
        restart_service redis-server
    else
        install_package redis
        restart_service redis
    fi
}

# The tooz URL to write: "etcd3" stands for DevStack's own etcd, and
# fails unless that is enabled.
function volume_pool_coordination_url {
    if [[ "$VOLUME_POOL_COORDINATION_URL" != "etcd3" ]]; then
        echo "$VOLUME_POOL_COORDINATION_URL"
    elif is_service_enabled etcd3; then
        echo "etcd3+http://${SERVICE_HOST}:${ETCD_PORT:-2379}"
    else
        return 1
    fi
}

function configure_volume_pool {
    sudo install -d -o "$STACK_USER" "$VOLUME_POOL_CONF_DIR"
    rm -f "$VOLUME_POOL_CONF"

    iniset "$VOLUME_POOL_CONF" DEFAULT debug "$ENABLE_DEBUG_LOG_LEVEL"
    iniset "$VOLUME_POOL_CONF" DEFAULT host "$(hostname)"
    iniset_rpc_backend volume-pool "$VOLUME_POOL_CONF" DEFAULT
    iniset "$VOLUME_POOL_CONF" database connection \
        "$(database_connection_url volume_pool)"
    iniset "$VOLUME_POOL_CONF" volume_pool replenish_interval \
        "$VOLUME_POOL_REPLENISH_INTERVAL"
    iniset "$VOLUME_POOL_CONF" volume_pool sync_interval \
        "$VOLUME_POOL_SYNC_INTERVAL"
    if [[ -n "$VOLUME_POOL_COORDINATION_URL" ]]; then
        local coordination_url
        coordination_url=$(volume_pool_coordination_url) ||
            die $LINENO "VOLUME_POOL_COORDINATION_URL=etcd3 needs" \
                "enable_service etcd3 in local.conf"
        iniset "$VOLUME_POOL_CONF" coordination backend_url \
            "$coordination_url"
    fi
    if [[ "$VOLUME_POOL_RABBIT_QUORUM_QUEUES" == "True" ]]; then
        iniset "$VOLUME_POOL_CONF" oslo_messaging_rabbit \
            rabbit_quorum_queue True
        iniset "$VOLUME_POOL_CONF" oslo_messaging_rabbit \
            rabbit_transient_quorum_queue True
    fi

    create_service_user "$VOLUME_POOL_SERVICE_USER" "admin"
    iniset "$VOLUME_POOL_CONF" cinder auth_type password
    iniset "$VOLUME_POOL_CONF" cinder auth_url "$KEYSTONE_SERVICE_URI"
    iniset "$VOLUME_POOL_CONF" cinder username "$VOLUME_POOL_SERVICE_USER"
    iniset "$VOLUME_POOL_CONF" cinder password "$SERVICE_PASSWORD"
    iniset "$VOLUME_POOL_CONF" cinder project_name "$SERVICE_PROJECT_NAME"
    iniset "$VOLUME_POOL_CONF" cinder user_domain_name "$SERVICE_DOMAIN_NAME"
    iniset "$VOLUME_POOL_CONF" cinder project_domain_name \
        "$SERVICE_DOMAIN_NAME"
    iniset "$VOLUME_POOL_CONF" cinder region_name "$REGION_NAME"

    recreate_database volume_pool
}

# Make a golden volume and snapshot per pool and enable the pools.
function create_volume_pool_snapshots {
    local pools="" entry name target volume snapshot
    for entry in $VOLUME_POOL_POOLS; do
        name=${entry%%:*}
        target=${entry##*:}
        volume=$(openstack volume create --size "$VOLUME_POOL_GOLDEN_SIZE" \
            "volume-pool-golden-$name" -f value -c id)
        wait_for_volume_pool_resource volume "$volume"
        snapshot=$(openstack volume snapshot create --volume "$volume" \
            "volume-pool-golden-$name" -f value -c id)
        wait_for_volume_pool_resource "volume snapshot" "$snapshot"
        iniset "$VOLUME_POOL_CONF" "pool:$name" snapshot_id "$snapshot"
        iniset "$VOLUME_POOL_CONF" "pool:$name" target "$target"
        pools=${pools:+$pools,}$name
    done
    iniset "$VOLUME_POOL_CONF" volume_pool enabled_pools "$pools"
}

function wait_for_volume_pool_resource {
    local kind=$1 id=$2 status i
    for i in $(seq 1 60); do
        # shellcheck disable=SC2086  # "volume snapshot" is two words
        status=$(openstack $kind show "$id" -f value -c status)
        [[ "$status" == "available" ]] && return 0
        [[ "$status" == error* ]] && die $LINENO "$kind $id is $status"
        sleep 2
    done
    die $LINENO "$kind $id not available after $i tries"
}

function init_volume_pool {
    "$VOLUME_POOL_BIN_DIR/volume-pool-manage" --config-file \
        "$VOLUME_POOL_CONF" db sync
}

function start_volume_pool {
    run_process volume-pool-manager \
        "$VOLUME_POOL_BIN_DIR/volume-pool-manager --config-file $VOLUME_POOL_CONF"
}

function stop_volume_pool {
    stop_process volume-pool-manager
}

function cleanup_volume_pool {
    sudo rm -rf "$VOLUME_POOL_CONF_DIR"
    if is_service_enabled mysql postgresql; then
        recreate_database volume_pool
    fi
}

if is_service_enabled volume-pool-manager; then
    if [[ "$1" == "stack" && "$2" == "install" ]]; then
        echo_summary "Installing volume-pool"
        install_volume_pool
        install_volume_pool_coordination
    elif [[ "$1" == "stack" && "$2" == "post-config" ]]; then
        echo_summary "Configuring volume-pool"
        configure_volume_pool
    elif [[ "$1" == "stack" && "$2" == "extra" ]]; then
        echo_summary "Starting volume-pool-manager"
        create_volume_pool_snapshots
        init_volume_pool
        start_volume_pool
    fi

    if [[ "$1" == "unstack" ]]; then
        stop_volume_pool
    fi

    if [[ "$1" == "clean" ]]; then
        cleanup_volume_pool
    fi
fi
